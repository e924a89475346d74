// Go-style durations ("8760h", "1h30m", "90s"), as the Cluster API writes certificate lifetimes.
const units: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000, ms: 1 };

export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new Error(`"${text}" is not a duration such as 8760h or 1h30m`);
  return parts.reduce((total, [, value, unit]) => total + Number(value) * units[unit!]!, 0);
}
