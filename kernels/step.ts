// The layout of one packed step, shared by kernels and their references.

/**
 * A sequence's place in a packed step: its state slot, its token range [start, start+len) in the step, and
 * `pos`, how many of its tokens the slot's state already holds (the position of its first token here).
 */
export interface Cursor { slot: number; start: number; len: number; pos?: number }
