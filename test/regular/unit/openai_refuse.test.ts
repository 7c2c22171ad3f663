// Request fields fla does not honour are refused with a 400 naming the field, not silently ignored.
import { describe, expect, test } from 'bun:test';
import { ApiError, parseChat, parseCompletion } from '../../../src/serve/openai.ts';

const refused = (f: () => unknown) => { try { f(); } catch (e) { return e as ApiError; } return null; };

describe('unsupported request fields', () => {
  const cases: [string, unknown][] = [
    ['response_format', { type: 'json_object' }],
    ['response_format', { type: 'json_schema', json_schema: { name: 'x', schema: {} } }],
    ['response_format', 'json'],
    ['grammar', 'root ::= "a"'],
    ['grammar', { type: 'gbnf', value: 'root ::= "a"' }],
    ['json_schema', { type: 'object' }],
    ['guided_json', {}],
    ['guided_regex', 'a+'],
    ['guided_choice', ['a', 'b']],
    ['guided_grammar', 'x'],
  ];
  for (const [field, value] of cases) {
    test(`${field}: ${JSON.stringify(value)} is a 400 naming it`, () => {
      for (const parse of [() => parseCompletion({ prompt: 'hi', [field]: value }), () => parseChat({ messages: [{ role: 'user', content: 'hi' }], [field]: value })]) {
        const e = refused(parse);
        expect(e).toBeInstanceOf(ApiError);
        expect(e!.status).toBe(400);
        expect(e!.param).toBe(field);
        expect(e!.message).toContain(`'${field}' is not supported`);
      }
    });
  }
  test('their neutral values are accepted', () => {
    for (const b of [{ response_format: { type: 'text' } }, { response_format: null }, { grammar: null }])
      expect(refused(() => parseCompletion({ prompt: 'hi', ...b }))).toBeNull();
  });
});
