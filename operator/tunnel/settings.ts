// The tunnel programs' settings come from the environment (their templates set them).
/** A required setting from the environment, or its default; a tunnel program without it stops at once. */
export function setting(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}
