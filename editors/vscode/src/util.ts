// Pure helpers, unit-tested without VS Code.

export interface EditorState {
  uri?: string;
  range?: { start: { line: number; character: number }; end: { line: number; character: number } };
}

export interface Status {
  folders?: { uri: string; tier: number; source: string }[];
  model?: { state?: string; name?: string };
}

/** The server commands need the active document (and selection); the palette gives no arguments. */
export function argsFor(command: string, args: unknown[], editor: EditorState, instruction?: string): unknown[] | undefined {
  if (args.length > 0) {
    return args;
  }
  if (!editor.uri) {
    return undefined;
  }
  switch (command) {
    case 'lokal.rewrite':
      return instruction ? [{ uri: editor.uri, range: editor.range, instruction }] : undefined;
    case 'lokal.cloudDesign':
    case 'lokal.previewCloudPayload':
      return [{ uri: editor.uri, range: editor.range }];
    default:
      return [{ uri: editor.uri }];
  }
}

/** Status bar text: the strictest tier of the open folders, and the model's state. */
export function statusText(s: Status | undefined): string {
  if (!s) {
    return 'lokal: starting';
  }
  const tiers = (s.folders ?? []).map((f) => f.tier);
  const tier = tiers.length ? Math.max(...tiers) : 3;
  const model = s.model?.state === 'ready' ? s.model.name ?? 'ready' : s.model?.state ?? '?';
  return `lokal T${tier} · ${model}`;
}
