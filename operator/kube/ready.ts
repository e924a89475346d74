// Whether a Pod or a Node says it is Ready (its Ready condition is True).

export const isReady = (obj: { status?: { conditions?: { type: string; status: string }[] } } | undefined): boolean =>
  obj?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
