// Config parsing of gla, linear_attn and abc: the tiny fixtures' configs parse to the expected shapes, and options
// we do not implement are refused with UnsupportedModelError naming the field.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import abc from '../../../src/models/abc.ts';
import gla from '../../../src/models/gla.ts';
import linearAttn from '../../../src/models/linear_attn.ts';
import { UnsupportedModelError } from '../../../src/util/errors.ts';
import { fixture } from '../../helpers/fixtures.ts';

const cfg = (name: string) => JSON.parse(readFileSync(join(fixture(name)!, 'config.json'), 'utf8')) as Record<string, unknown>;
const refuses = (f: () => unknown, field: string) => {
  let err: unknown = null;
  try { f(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(UnsupportedModelError);
  expect((err as Error).message).toContain(field);
};

describe.skipIf(!fixture('gla-tiny') || !fixture('abc-tiny') || !fixture('linear_attn-tiny'))('gla / linear_attn / abc configs', () => {
  test('tiny configs parse to the fixture shapes', () => {
    const g = gla.parseConfig(cfg('gla-tiny'), 'gla');
    expect([g.head_k_dim, g.head_v_dim, g.num_kv_heads, g.intermediate_size, g.fuse_norm]).toEqual([32, 64, 2, 512, false]);
    const l = linearAttn.parseConfig(cfg('linear_attn-tiny'), 'la');
    expect([l.head_k_dim, l.head_v_dim, l.feature_map]).toEqual([64, 64, 'elementwise_product']);
    const a = abc.parseConfig(cfg('abc-tiny'), 'abc');
    expect([a.head_k_dim, a.head_v_dim, a.num_slots, a.clamp_min, a.clamp_max, a.use_rope]).toEqual([32, 64, 32, -32, 32, true]);
  });

  test('unsupported options name their field', () => {
    refuses(() => gla.parseConfig({ ...cfg('gla-tiny'), use_short_conv: true }, 'gla'), 'use_short_conv');
    refuses(() => gla.parseConfig({ ...cfg('gla-tiny'), feature_map: 'gelu' }, 'gla'), 'feature_map');
    refuses(() => gla.parseConfig({ ...cfg('gla-tiny'), attn: { layers: [0] } }, 'gla'), 'attn');
    refuses(() => gla.parseConfig({ ...cfg('gla-tiny'), num_kv_heads: 3 }, 'gla'), 'num_kv_heads');
    refuses(() => linearAttn.parseConfig({ ...cfg('linear_attn-tiny'), feature_map: 'hedgehog' }, 'la'), 'feature_map');
    refuses(() => linearAttn.parseConfig({ ...cfg('linear_attn-tiny'), hidden_act: 'powlu' }, 'la'), 'hidden_act');
    refuses(() => abc.parseConfig({ ...cfg('abc-tiny'), use_short_conv: true }, 'abc'), 'use_short_conv');
    refuses(() => abc.parseConfig({ ...cfg('abc-tiny'), attnres_block_size: 4 }, 'abc'), 'attnres_block_size');
  });
});
