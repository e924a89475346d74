// Lists in a business cluster read in bounded pieces: what its tenant made may be huge.
import type { BusinessClient } from './clients.ts';

/** Objects one page holds, and the most a list reads in all. */
export const businessListLimit = 500;
export const businessListMax = 5000;

/** Every page of a list, up to businessListMax objects (a list cut there is not whole: callers check). */
export async function listBounded<T>(
  page: (opts: { limit: number; _continue?: string }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined;
  do {
    const answer = await page({ limit: businessListLimit, ...(next ? { _continue: next } : {}) });
    items.push(...answer.items);
    next = answer.metadata?._continue || undefined;
  } while (next && items.length < businessListMax);
  return items.slice(0, businessListMax);
}

/** The business cluster's CSRs of one signer, a bounded number at a time (the rest come next pass). */
export const signerCsrs = (client: BusinessClient, signer: string) =>
  listBounded((page) =>
    client.certificates.listCertificateSigningRequest({ fieldSelector: `spec.signerName=${signer}`, ...page }),
  );
