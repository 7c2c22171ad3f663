// The layout of one packed step, shared by kernels and their references.

/** A sequence's place in a packed step: its state slot and its token range [start, start+len). */
export interface Cursor { slot: number; start: number; len: number }
