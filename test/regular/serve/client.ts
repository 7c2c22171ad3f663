// A small OpenAI-style client for the server tests: JSON posts and SSE streams, each bounded in time and size.

export async function post(url: string, body: unknown, timeoutMs = 120_000): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, json: await res.json() };
}

/** The `data:` payloads of a streaming response. stopAfter: abort the connection after that many frames. */
export async function stream(url: string, body: Record<string, unknown>, opts: { stopAfter?: number; timeoutMs?: number; onFrame?: (n: number) => void } = {}): Promise<{ status: number; frames: string[] }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 120_000);
  try {
    const res = await fetch(url, { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal: ac.signal });
    if (!res.body || !res.headers.get('content-type')?.startsWith('text/event-stream')) return { status: res.status, frames: [await res.text()] };
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    const frames: string[] = [];
    let buf = '';
    for (let i = 0; i < 100_000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      for (let k = buf.indexOf('\n\n'); k >= 0; k = buf.indexOf('\n\n')) {
        const f = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (!f.startsWith('data: ')) throw new Error(`not an SSE data frame: ${JSON.stringify(f)}`);
        frames.push(f.slice(6));
        opts.onFrame?.(frames.length);
      }
      if (opts.stopAfter !== undefined && frames.length >= opts.stopAfter) { ac.abort(); break; }
    }
    return { status: res.status, frames };
  } finally {
    clearTimeout(timer);
  }
}

/** Text of a completed stream (completions or chat chunks); throws unless it ends with a finish reason and [DONE]. */
export function streamText(frames: string[]): { text: string; finish: string } {
  if (frames.at(-1) !== '[DONE]') throw new Error(`stream did not end with [DONE]: ${frames.slice(-2).join(' | ')}`);
  let text = '', finish = '';
  for (const f of frames.slice(0, -1)) {
    const c = JSON.parse(f).choices?.[0];
    if (!c) continue;
    text += c.text ?? c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  if (!finish) throw new Error('stream had no finish_reason');
  return { text, finish };
}

/** A metric's value from /metrics text (first series whose name and labels match). */
export function metric(text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(series + ' '));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

/** Poll until cond() holds, at most `tries` times, `ms` apart. */
export async function until(cond: () => Promise<boolean>, tries = 200, ms = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) { if (await cond()) return true; await Bun.sleep(ms); }
  return false;
}
