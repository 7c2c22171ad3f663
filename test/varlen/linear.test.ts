// Variable-length batching of GLA, linear attention and ABC: packed steps, batched greedy decode and budget splits.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('gla-tiny');
varlenSuite('linear_attn-tiny');
varlenSuite('abc-tiny');
