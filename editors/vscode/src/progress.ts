// Pure helpers of "lokal: Pull the Recommended Model", unit-tested without VS Code: the JSON lines of
// `lokal models pull --progress-json` and `lokal models --json`.

export type PullEvent =
  | { event: 'start'; file: string; total?: number | null; from: number }
  | { event: 'progress'; file: string; done: number; total?: number | null }
  | { event: 'retry'; file: string; attempt: number; error: string }
  | { event: 'verifying'; file: string }
  | { event: 'done'; file: string; path: string; cached: boolean }
  | { event: 'pulled'; path: string; id: string }
  | { event: 'error'; message: string };

const KINDS = new Set(['start', 'progress', 'retry', 'verifying', 'done', 'pulled', 'error']);

/** One stdout line, or undefined for anything that is not one of the CLI's events. */
export function parseLine(line: string): PullEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || !KINDS.has((v as { event?: string }).event ?? '')) {
    return undefined;
  }
  return v as PullEvent;
}

/** Turns the CLI's absolute byte counts into the increments (percent) that `Progress.report` adds up. */
export class ProgressTracker {
  private percent = 0;

  /** A message and the increment since the last report, or undefined when nothing changed worth showing. */
  update(e: PullEvent): { message: string; increment: number } | undefined {
    switch (e.event) {
      case 'start':
      case 'progress': {
        const done = e.event === 'start' ? e.from : e.done;
        if (!e.total) {
          return { message: `${e.file}: ${mb(done)}`, increment: 0 };
        }
        const p = Math.min(100, (done * 100) / e.total);
        // A new file, or a restart from zero, goes back: the bar restarts with it.
        const increment = Math.max(0, p - this.percent);
        this.percent = p;
        return { message: `${e.file}: ${mb(done)} of ${mb(e.total)}`, increment };
      }
      case 'retry':
        return { message: `${e.file}: ${e.error}; resuming (attempt ${e.attempt})`, increment: 0 };
      case 'verifying':
        return { message: `${e.file}: checking sha256`, increment: 0 };
      case 'done':
        this.percent = 0;
        return { message: `${e.file}: ${e.cached ? 'already there' : 'checksum matches'}`, increment: 0 };
      default:
        return undefined;
    }
  }
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

/** The recommended catalog id from `lokal models --json`. */
export function recommended(modelsJson: string): string | undefined {
  try {
    const r = (JSON.parse(modelsJson) as { recommended?: unknown }).recommended;
    return typeof r === 'string' && r ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a stream of chunks into whole lines. */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const parts = (this.rest + chunk).split('\n');
    this.rest = parts.pop() ?? '';
    return parts.filter((l) => l.trim() !== '');
  }
}
