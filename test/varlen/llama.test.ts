// Packed variable-length batches of `llama` equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('llama-tiny');
