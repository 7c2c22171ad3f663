// Packed variable-length batches of `qwen3` equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('qwen3-tiny');
