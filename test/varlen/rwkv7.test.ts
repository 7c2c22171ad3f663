// Variable-length batching of rwkv7 (rwkv7-tiny): packed steps, batched greedy decode and budget splits equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('rwkv7-tiny');
