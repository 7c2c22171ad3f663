// Packed variable-length batches of `qwen3_next` equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('qwen3_next-tiny');
