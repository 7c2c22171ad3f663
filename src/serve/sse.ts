// Server-sent events: an async sequence of JSON objects as `data: {...}` frames ending with `data: [DONE]`.

const enc = new TextEncoder();

export const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

export function frame(data: unknown): Uint8Array {
  return enc.encode(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

/**
 * A streaming response of `events`, pulled one frame at a time. onCancel runs when the client goes away
 * before the end; onEnd runs once in every case (after [DONE], or after the cancel).
 */
export function sseResponse(events: AsyncIterable<unknown>, onCancel: () => void, onEnd: () => void): Response {
  const it = events[Symbol.asyncIterator]();
  let ended = false;
  const end = () => { if (!ended) { ended = true; onEnd(); } };
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await it.next();
        if (ended) return;
        if (r.done) { c.enqueue(frame('[DONE]')); c.close(); end(); }
        else c.enqueue(frame(r.value));
      } catch {
        onCancel();   // enqueue on a closed stream: the client is gone
        end();
      }
    },
    cancel() { onCancel(); end(); },
  });
  return new Response(body, { headers: SSE_HEADERS });
}
