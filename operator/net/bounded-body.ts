// Answers from what a tenant controls (a Pod of their namespace, their business cluster) are read
// with a bound on their size: past it the rest is not read, the connection is dropped, and the
// caller gets what came so far, marked as cut. The deadline of the request bounds the time.

/** At most `maxBytes` of a fetch answer's body, as text; `cut` when there was more. */
export async function boundedText(res: Response, maxBytes: number): Promise<{ text: string; cut: boolean }> {
  const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (!reader) return { text: '', cut: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: Buffer.concat(chunks).toString('utf8'), cut: false };
      const room = maxBytes - size;
      if (value.byteLength > room) {
        chunks.push(value.subarray(0, room));
        return { text: Buffer.concat(chunks).toString('utf8'), cut: true };
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
