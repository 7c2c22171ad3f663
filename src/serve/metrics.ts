// Prometheus text exposition of the server: HTTP requests by status and the scheduler's counters and gauges.
import type { SchedulerStats } from '../runtime/scheduler.ts';

export class Metrics {
  private byStatus = new Map<number, number>();

  count(status: number): void { this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1); }

  render(s: SchedulerStats): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
    };
    metric('fla_requests_total', 'counter', 'HTTP requests answered, by status code.',
      [...this.byStatus].sort(([a], [b]) => a - b).map(([k, v]) => [`{status="${k}"}`, v]));
    metric('fla_requests_finished_total', 'counter', 'Generations ended, by reason.',
      Object.entries(s.finished).map(([k, v]) => [`{reason="${k}"}`, v]));
    metric('fla_prompt_tokens_total', 'counter', 'Prompt tokens prefilled.', [['', s.promptTokens]]);
    metric('fla_generation_tokens_total', 'counter', 'Tokens generated.', [['', s.generatedTokens]]);
    metric('fla_steps_total', 'counter', 'Engine steps run.', [['', s.steps]]);
    metric('fla_queue_depth', 'gauge', 'Requests waiting for a slot.', [['', s.queued]]);
    metric('fla_running_requests', 'gauge', 'Sequences in the running batch.', [['', s.running]]);
    metric('fla_batch_slots', 'gauge', 'Sequence slots (--max-batch).', [['', s.slots]]);
    metric('fla_generation_tokens_per_second', 'gauge', 'Generated tokens per second over the last 10 s.', [['', s.tokensPerSecond]]);
    const c = s.prefixCache;
    if (c) {
      metric('fla_prefix_cache_hits_total', 'counter', 'Requests that restored a prompt prefix from the state cache.', [['', c.hits]]);
      metric('fla_prefix_cache_misses_total', 'counter', 'Requests that found no prefix in the state cache.', [['', c.misses]]);
      metric('fla_prefill_tokens_saved_total', 'counter', 'Prompt tokens restored from the state cache instead of prefilled.', [['', c.tokensSaved]]);
      metric('fla_prefix_cache_bytes', 'gauge', 'Memory held by the state cache (checkpoints and trie), bytes.', [['', c.bytes]]);
    }
    metric('fla_device_up', 'gauge', '1 while the device works, 0 once it failed.', [['', s.failure ? 0 : 1]]);
    return out.join('\n') + '\n';
  }
}
