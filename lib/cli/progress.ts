// Progress on long work (quantize's phases, eval's batches), always on stderr so stdout stays
// clean for --json and redirection. On a TTY: one line redrawn with `\r`. Otherwise: a plain
// line when a phase ends and at most one every `intervalMs` in between, so logs stay short.

export interface ProgressStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Plain (non-TTY) mode: least time between two lines of one phase (default 5000 ms). */
  intervalMs?: number;
  /** Overrides the stream's isTTY (tests). */
  tty?: boolean;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private drawn = false;
  private lastLabel = '';
  private lastLine = 0;
  private lastDraw = 0;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.intervalMs = options.intervalMs ?? 5000;
  }

  /** Reports `done` of `total` (null: unknown) for a phase; `detail` (e.g. a layer name) follows. */
  update(label: string, done: number, total: number | null, detail = ''): void {
    const finished = total !== null && total > 0 && done >= total;
    const count = total === null ? `${done}` : `${done}/${total}`;
    const now = Date.now();
    if (!this.tty) {
      if (label !== this.lastLabel) this.lastLine = now;
      this.lastLabel = label;
      if (finished || now - this.lastLine >= this.intervalMs) {
        this.stream.write(`${label}: ${count}${finished ? ' done' : ''}\n`);
        this.lastLine = now;
      }
      return;
    }
    // Redraw at most ~20 times a second, but always the last step of a phase.
    if (!finished && label === this.lastLabel && now - this.lastDraw < 50) return;
    if (label !== this.lastLabel) this.done(); // a new phase starts on a new line
    this.lastLabel = label;
    this.lastDraw = now;
    const width = 24;
    const fraction = total ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * width);
    const bar = total === null ? '' : ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    let line = `${label}${bar} ${count}${detail ? ` ${detail}` : ''}`;
    const columns = this.stream.columns && this.stream.columns > 20 ? this.stream.columns : 80;
    if (line.length > columns - 1) line = line.slice(0, columns - 1);
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
    if (finished) this.done();
  }

  /** Ends the current bar's line (TTY); call before printing anything else to the stream. */
  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
