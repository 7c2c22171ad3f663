// Perplexity over fixed windows (shared/README.md `val_loss`): window w feeds tokens w·N … w·N+N−1 and
// scores tokens w·N+1 … w·N+N. Windows run as separate sequences packed into one step.
import type { Engine } from './engine.ts';
import { logSoftmaxAt } from './sample.ts';

export interface PplResult { windows: number; window: number; tokens: number; meanNll: number; ppl: number; ms: number }

export async function perplexity(engine: Engine, ids: ArrayLike<number>, window: number, onProgress?: (done: number, total: number) => void): Promise<PplResult> {
  const total = Math.floor((ids.length - 1) / window);
  const per = Math.max(1, Math.min(engine.slots, Math.floor(engine.budget / window) || 1));
  const V = engine.vocab;
  const t0 = performance.now();
  let nll = 0;
  for (let w0 = 0; w0 < total; w0 += per) {
    const ws = Array.from({ length: Math.min(per, total - w0) }, (_, i) => w0 + i);
    const slots = ws.map(() => engine.acquire());
    try {
      const outs = await engine.run(ws.map((w, i) => ({ slot: slots[i]!, tokens: Array.from({ length: window }, (_, t) => ids[w * window + t]!), keepAll: true })));
      ws.forEach((w, i) => {
        for (let t = 0; t < window; t++) nll -= logSoftmaxAt(outs[i]!, t * V, V, ids[w * window + t + 1]!);
      });
    } finally {
      slots.forEach(s => engine.release(s));
    }
    onProgress?.(Math.min(total, w0 + per), total);
  }
  const meanNll = total ? nll / (total * window) : NaN;
  return { windows: total, window, tokens: total * window, meanNll, ppl: Math.exp(meanNll), ms: performance.now() - t0 };
}
