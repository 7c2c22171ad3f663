// Scheduler fairness (issue 17.3): each step's prefill budget is shared by the prompts still prefilling, so a short
// request behind a long prompt finishes in a few steps instead of waiting for the whole long prefill.
import { describe, expect, test } from 'bun:test';
import { Engine } from '../../../src/runtime/engine.ts';
import { validateSampling } from '../../../src/runtime/sample.ts';
import { Scheduler, shareBudget } from '../../../src/runtime/scheduler.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';

const kjv = sharedModel('kjv-rwkv7');
const KIND = HAS_GPU ? 'gpu' : 'cpu';

describe('shareBudget', () => {
  test('equal shares; what a short prompt does not need goes to the others; nothing beyond what is left', () => {
    expect(shareBudget([1000, 1000], 64)).toEqual([32, 32]);
    expect(shareBudget([1000, 5, 1000], 64)).toEqual([30, 5, 29]);
    expect(shareBudget([3, 4], 64)).toEqual([3, 4]);
    expect(shareBudget([], 64)).toEqual([]);
    expect(shareBudget([0, 10], 4)).toEqual([0, 4]);
  });

  test('the remainder rotates with the turn, so no prompt is always last', () => {
    expect(shareBudget([9, 9, 9], 2, 0)).toEqual([1, 1, 0]);
    expect(shareBudget([9, 9, 9], 2, 1)).toEqual([0, 1, 1]);
    expect(shareBudget([9, 9, 9], 2, 2)).toEqual([1, 0, 1]);
    for (let turn = 0; turn < 5; turn++) expect(shareBudget([100, 100, 100], 64, turn).reduce((a, b) => a + b)).toBe(64);
  });
});

describe.skipIf(!kjv)(`scheduler fairness (${KIND})`, () => {
  test('a short request submitted behind a long prompt finishes within a few steps, before the long one starts generating', async () => {
    const tok = HfTokenizer.load(kjv!);
    const BUDGET = 64;
    const engine = new Engine(load(kjv!, KIND), 2, BUDGET);
    const sched = new Scheduler(engine, tok, { eosIds: [] });
    const greedy = validateSampling({ temperature: 0 });
    const long = tok.encode('And it came to pass in those days, that there went out a decree. '.repeat(200)).slice(0, 40 * BUDGET);
    const longStream = sched.submit({ prompt: long, maxTokens: 2, sampling: greedy });
    const t0 = performance.now();
    const short = await sched.submit({ prompt: tok.encode('Jesus wept.'), maxTokens: 4, sampling: greedy }).result;
    const shortMs = performance.now() - t0, shortSteps = sched.stats().steps;
    const longFed = sched.stats().promptTokens - short.promptTokens;
    const longResult = await longStream.result;
    expect(short.finishReason).toBe('length');
    expect(short.generatedTokens).toBe(4);
    // one step for its prompt (half the budget), then one step per token; the long prompt needs 40 steps alone
    expect(shortSteps, `short request took ${shortSteps} steps, ${shortMs.toFixed(0)} ms`).toBeLessThanOrEqual(6);
    expect(longFed).toBeLessThan(long.length);
    expect(longResult.generatedTokens).toBe(2);
  });
});
