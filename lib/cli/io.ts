// Where the commands write: results to stdout, notes and progress to stderr (so `--json` output
// and redirected results never carry anything else).
import type { ProgressStream } from './progress';

export interface Io {
  /** One line of results (stdout). */
  out(line: string): void;
  /** One line of notes or warnings (stderr). */
  err(line: string): void;
  /** The stream progress bars draw on (stderr). */
  progressStream: ProgressStream;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  progressStream: process.stderr,
};
