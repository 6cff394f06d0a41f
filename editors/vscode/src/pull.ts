// "lokal: Pull the Recommended Model": asks `lokal models --json` for this machine's recommendation, runs
// `lokal models pull ID --progress-json` under a cancellable progress notification, then offers
// `lokal models use ID` and a restart of the server so the next session loads it.
import * as vscode from 'vscode';
import { execFile, spawn } from 'node:child_process';
import { LineSplitter, parseLine, ProgressTracker, recommended } from './progress';

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(stderr.trim() || err.message));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** Runs the pull; resolves with the model's path, rejects with the CLI's message. */
function pullWithProgress(command: string, id: string): Thenable<string> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `lokal: pulling ${id}`, cancellable: true },
    (progress, token) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(command, ['models', 'pull', id, '--progress-json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const lines = new LineSplitter();
        const tracker = new ProgressTracker();
        let path: string | undefined;
        let error: string | undefined;
        let stderr = '';
        token.onCancellationRequested(() => child.kill());
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          for (const line of lines.push(chunk)) {
            const e = parseLine(line);
            if (!e) {
              continue;
            }
            if (e.event === 'pulled') {
              path = e.path;
            } else if (e.event === 'error') {
              error = e.message;
            }
            const r = tracker.update(e);
            if (r) {
              progress.report(r);
            }
          }
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr = (stderr + chunk).slice(-4000);
        });
        child.on('error', (e) => reject(new Error(`${command}: ${e.message}`)));
        child.on('close', (code) => {
          if (token.isCancellationRequested) {
            reject(new Error('cancelled; the next pull resumes where this one stopped'));
          } else if (code === 0 && path) {
            resolve(path);
          } else {
            reject(new Error(error ?? (stderr.trim() || `lokal models pull exited with ${String(code)}`)));
          }
        });
      }),
  );
}

export async function pullRecommended(command: string, restart: () => Promise<void>): Promise<void> {
  let id: string | undefined;
  try {
    id = recommended(await run(command, ['models', '--json']));
  } catch (e) {
    void vscode.window.showErrorMessage(`lokal models: ${(e as Error).message}`);
    return;
  }
  if (!id) {
    void vscode.window.showWarningMessage('lokal: no catalog model fits this machine with room to spare (run `lokal models` for the table).');
    return;
  }
  let path: string;
  try {
    path = await pullWithProgress(command, id);
  } catch (e) {
    void vscode.window.showErrorMessage(`lokal: pulling ${id} failed: ${(e as Error).message}`);
    return;
  }
  const pick = await vscode.window.showInformationMessage(`lokal: ${id} is in ${path}. Make it the model of every session?`, 'Use it', 'Not now');
  if (pick !== 'Use it') {
    return;
  }
  try {
    await run(command, ['models', 'use', id]);
  } catch (e) {
    void vscode.window.showErrorMessage(`lokal models use: ${(e as Error).message}`);
    return;
  }
  const modelPath = vscode.workspace.getConfiguration('lokal').get<string>('modelPath');
  const note = modelPath ? ` Your lokal.modelPath setting (${modelPath}) still wins over it.` : '';
  const again = await vscode.window.showInformationMessage(`lokal: ${id} is now the default model.${note}`, 'Restart lokal');
  if (again === 'Restart lokal') {
    await restart();
  }
}
