// Packed variable-length batches of `transformer` equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('transformer-tiny');
