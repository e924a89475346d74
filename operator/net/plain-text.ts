// Text that came from someone else's machine (a host's error line, an SSH server's disconnect
// reason), made fit for a condition, an Event or a log line: no control characters (a terminal
// escape, a newline that would start a forged line) and a bounded length.

/** `text` without C0/C1 control characters (each becomes `replacement`), `max` characters at most. */
export function plainText(text: string, max: number, replacement = ' '): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, replacement).slice(0, max);
}
