/** The last `capacity` lines written to it, oldest first. */
export class LineRing {
  private readonly buf: string[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`line ring capacity must be an integer >= 1 (got ${capacity})`);
  }

  push(line: string): void {
    this.buf.push(line);
    if (this.buf.length > this.capacity) this.buf.splice(0, this.buf.length - this.capacity);
  }

  /** The last `tail` lines (all kept lines when `tail` is undefined), oldest first. */
  lines(tail?: number): string[] {
    if (tail === undefined) return [...this.buf];
    return tail <= 0 ? [] : this.buf.slice(-tail);
  }
}

/**
 * Turns chunks of a byte stream into lines (`\n` or `\r\n` endings). A line longer than
 * `maxLineChars` is cut there and the rest starts a new line, so a process writing without newlines
 * cannot grow memory without bound.
 */
export class LineSplitter {
  private partial = '';

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars = 16 * 1024,
  ) {}

  write(chunk: string): void {
    let text = this.partial + chunk;
    let nl: number;
    while ((nl = text.indexOf('\n')) !== -1) {
      const line = text.slice(0, nl);
      this.emit(line.endsWith('\r') ? line.slice(0, -1) : line);
      text = text.slice(nl + 1);
    }
    while (text.length > this.maxLineChars) {
      this.onLine(text.slice(0, this.maxLineChars));
      text = text.slice(this.maxLineChars);
    }
    this.partial = text;
  }

  /** Emits what is left of an unterminated last line. */
  end(): void {
    if (this.partial.length > 0) this.emit(this.partial);
    this.partial = '';
  }

  private emit(line: string): void {
    for (let i = 0; i < line.length; i += this.maxLineChars) this.onLine(line.slice(i, i + this.maxLineChars));
    if (line.length === 0) this.onLine('');
  }
}
