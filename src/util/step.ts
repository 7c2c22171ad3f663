// The layout of one packed step, shared by the runtime, the models, the ops and both backends (util: below all).

/**
 * A sequence's place in a packed step: its state slot, its token range [start, start+len) in the step, and
 * `pos`, how many of its tokens the slot's state already holds (the position of its first token here).
 */
export interface Cursor { slot: number; start: number; len: number; pos?: number }

/** One packed step: tokens of several sequences back to back, and which token rows to keep logits for. */
export interface StepLayout {
  ids: Int32Array;                    // [N]
  cursors: Cursor[];                  // [B], token ranges in ids, each with its state slot
  keep: Int32Array;                   // [K] rows of ids whose logits come back
}
