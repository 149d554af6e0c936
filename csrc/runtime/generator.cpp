#include "runtime/generator.h"

#include <algorithm>
#include <cstring>

namespace mce {

Generator::Generator(Model& model, std::vector<int32_t> prompt, const GenerateOptions& opts)
    : model_(model), prompt_(std::move(prompt)), opts_(opts), sampler_(opts.sampling) {
  if (prompt_.empty()) throw ArgumentError("the prompt must contain at least one token");
  if (int64_t(prompt_.size()) >= model_.n_ctx())
    throw ContextOverflowError("prompt of " + std::to_string(prompt_.size()) +
                               " tokens does not fit the context (n_ctx = " + std::to_string(model_.n_ctx()) +
                               "); leave room for at least one generated token");
  for (int32_t t : opts_.stop_ids)
    if (t < 0 || t >= model_.n_vocab()) throw ArgumentError("stop token id out of range");
  logits_.resize(size_t(model_.n_vocab()));
}

int32_t Generator::next() {
  if (done_) return -1;
  if (opts_.max_tokens >= 0 && n_generated_ >= opts_.max_tokens) { finish("length"); return -1; }
  auto keep_logits = [this](int, const float* l) { std::memcpy(logits_.data(), l, logits_.size() * sizeof(float)); };
  if (!started_) {
    started_ = true;
    // Longest cached prefix of the prompt, leaving at least one token to
    // evaluate so that there are logits to sample from.
    const auto& cached = model_.cached_tokens();
    size_t common = 0;
    const size_t limit = std::min(cached.size(), prompt_.size() - 1);
    while (common < limit && cached[common] == prompt_[common]) ++common;
    model_.truncate(int(common));
    const int rest = int(prompt_.size() - common);
    n_prompt_evaluated_ = rest;
    model_.eval(prompt_.data() + common, rest, rest - 1, keep_logits);
  } else {
    if (model_.n_past() >= model_.n_ctx()) { finish("length"); return -1; }
    model_.eval(&last_, 1, 0, keep_logits);
  }
  const int32_t tok = sampler_.sample(logits_.data(), model_.n_vocab(), model_.cached_tokens());
  if (std::find(opts_.stop_ids.begin(), opts_.stop_ids.end(), tok) != opts_.stop_ids.end()) {
    finish("stop");
    return -1;
  }
  last_ = tok;
  ++n_generated_;
  return tok;
}

}  // namespace mce
