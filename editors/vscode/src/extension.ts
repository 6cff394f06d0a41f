// A thin client: starts `lokal --stdio`, lets vscode-languageclient map LSP inline completion to VS Code's
// ghost text, fills the server commands' arguments from the active editor, and shows the tier.
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';
import { argsFor, Status, statusText } from './util';
import { pullRecommended } from './pull';

let client: LanguageClient | undefined;

function editorState() {
  const e = vscode.window.activeTextEditor;
  if (!e) {
    return {};
  }
  const s = e.selection;
  return {
    uri: e.document.uri.toString(),
    range: { start: { line: s.start.line, character: s.start.character }, end: { line: s.end.line, character: s.end.character } },
  };
}

export async function activate(ctx: vscode.ExtensionContext): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('lokal');
  const command = cfg.get<string>('path') || 'lokal';
  const serverOptions: ServerOptions = { command, args: ['--stdio'] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }],
    initializationOptions: {
      modelPath: cfg.get<string>('modelPath') || undefined,
      maxTokens: cfg.get<number>('maxTokens'),
      maxLines: cfg.get<number>('maxLines'),
      sequences: cfg.get<number>('sequences'),
      prefetch: cfg.get<boolean>('prefetch'),
      defaultTier: cfg.get<number>('defaultTier'),
    },
    synchronize: { configurationSection: 'lokal' },
    middleware: {
      executeCommand: async (cmd, args, next) => {
        const instruction = cmd === 'lokal.rewrite' && args.length === 0 ? await vscode.window.showInputBox({ prompt: 'Rewrite the selection: instruction' }) : undefined;
        const filled = argsFor(cmd, args, editorState(), instruction);
        if (!filled) {
          return undefined;
        }
        const result: unknown = await next(cmd, filled);
        if (cmd === 'lokal.previewCloudPayload' && result) {
          const doc = await vscode.workspace.openTextDocument({ content: JSON.stringify(result, null, 2), language: 'json' });
          await vscode.window.showTextDocument(doc);
        }
        if (cmd === 'lokal.previewPlan' && result) {
          const r = result as { diff?: string; message?: string };
          const doc = await vscode.workspace.openTextDocument({ content: r.diff || r.message || '', language: 'diff' });
          await vscode.window.showTextDocument(doc);
        }
        return result;
      },
    },
  };
  client = new LanguageClient('lokal', 'lokal', serverOptions, clientOptions);

  const bar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  bar.command = 'lokal.showStatus';
  bar.text = statusText(undefined);
  bar.show();
  const refresh = async () => {
    try {
      const s = await client?.sendRequest<Status>('lokal/status', {});
      bar.text = statusText(s);
      bar.tooltip = (s?.folders ?? []).map((f) => `${f.uri}: Tier ${f.tier} (${f.source})`).join('\n');
    } catch {
      bar.text = 'lokal T? · error';
    }
  };
  const timer = setInterval(() => void refresh(), 5000);
  ctx.subscriptions.push(bar, { dispose: () => clearInterval(timer) });
  ctx.subscriptions.push(
    vscode.commands.registerCommand('lokal.showStatus', async () => {
      await refresh();
      void vscode.window.showInformationMessage(typeof bar.tooltip === 'string' && bar.tooltip ? bar.tooltip : bar.text);
    }),
    vscode.commands.registerCommand('lokal.pullRecommendedModel', () => pullRecommended(command, async () => client?.restart())),
    vscode.commands.registerCommand('lokal.showAudit', () => {
      const t = vscode.window.createTerminal('lokal audit');
      t.sendText(`${command} audit`);
      t.show();
    }),
  );
  await client.start();
  await refresh();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
