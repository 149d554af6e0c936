// Model and Generator for Python. Compute runs with the GIL released; only
// the conversion of results to numpy holds it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>

#include "bindings/bindings.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "runtime/sampler.h"

namespace py = pybind11;

namespace mce::py_bind {

namespace {

std::vector<int32_t> to_tokens(const py::handle& obj) {
  auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr || arr.ndim() != 1) throw ArgumentError("tokens must be a 1-D sequence of integers");
  std::vector<int32_t> out(size_t(arr.size()));
  auto r = arr.unchecked<1>();
  for (py::ssize_t i = 0; i < arr.size(); ++i) {
    if (r(i) < INT32_MIN || r(i) > INT32_MAX) throw ArgumentError("token id out of range");
    out[size_t(i)] = static_cast<int32_t>(r(i));
  }
  return out;
}

KvType kv_type_from_name(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "f32") return KvType::F32;
  throw ArgumentError("kv_cache_type must be \"f16\" or \"f32\", not \"" + name + "\"");
}

py::dict config_dict(const ModelConfig& c) {
  py::dict d;
  d["arch"] = c.arch;
  d["variant"] = c.variant;
  d["n_vocab"] = c.n_vocab;
  d["n_embd"] = c.n_embd;
  d["n_layer"] = c.n_layer;
  d["n_head"] = c.n_head;
  d["n_head_kv"] = c.n_head_kv;
  d["head_dim"] = c.head_dim;
  d["n_ff"] = c.n_ff;
  d["n_ctx_train"] = c.n_ctx_train;
  d["n_rot"] = c.n_rot;
  d["rms_eps"] = c.rms_eps;
  d["rope_base"] = c.rope_base;
  d["embedding_scale"] = c.embedding_scale;
  d["residual_scale"] = c.residual_scale;
  d["logit_scale"] = c.logit_scale;
  return d;
}

}  // namespace

void register_model(py::module_& m) {
  py::class_<Model>(m, "Model")
      .def(py::init([](const std::string& path, int n_ctx, int n_threads, int n_batch, bool int8_activations,
                       const std::string& kv_cache_type) {
             ModelOptions o;
             o.n_ctx = n_ctx;
             o.n_threads = n_threads;
             o.n_batch = n_batch;
             o.precision = int8_activations ? ActivationPrecision::Int8 : ActivationPrecision::Exact;
             o.kv_type = kv_type_from_name(kv_cache_type);
             py::gil_scoped_release nogil;
             return std::make_unique<Model>(path, o);
           }),
           py::arg("path"), py::arg("n_ctx") = 0, py::arg("n_threads") = 0, py::arg("n_batch") = 512,
           py::arg("int8_activations") = true, py::arg("kv_cache_type") = "f16")
      .def_property_readonly("n_ctx", &Model::n_ctx)
      .def_property_readonly("n_vocab", &Model::n_vocab)
      .def_property_readonly("n_threads", &Model::n_threads)
      .def_property_readonly("kv_cache_type",
                             [](const Model& mdl) { return mdl.kv_type() == KvType::F16 ? "f16" : "f32"; })
      .def_property_readonly("n_past", &Model::n_past)
      .def_property_readonly("config", [](const Model& mdl) { return config_dict(mdl.config()); })
      .def("reset", [](Model& mdl) { mdl.truncate(0); })
      .def("truncate", &Model::truncate, py::arg("n"))
      .def(
          "eval",
          [](Model& mdl, const py::object& tokens, bool all_logits) {
            std::vector<int32_t> toks = to_tokens(tokens);
            const int n = int(toks.size()), V = mdl.n_vocab();
            if (n == 0) throw ArgumentError("eval needs at least one token");
            const int rows = all_logits ? n : 1;
            py::array_t<float> out({rows, V});
            float* dst = out.mutable_data();
            {
              py::gil_scoped_release nogil;
              mdl.eval(toks.data(), n, all_logits ? 0 : n - 1, [&](int i, const float* l) {
                std::copy(l, l + V, dst + size_t(all_logits ? i : 0) * V);
              });
            }
            return out;
          },
          py::arg("tokens"), py::arg("all_logits") = false,
          "Append tokens to the sequence; returns logits [n, vocab] (all_logits) or [1, vocab] (last).")
      .def(
          "score",
          [](Model& mdl, const py::object& tokens, int first) {
            // log p(tokens[i+1] | tokens[..i]) and argmax for i in [first, n-1):
            // what perplexity and teacher-forced agreement need, without
            // materialising n x vocab logits.
            std::vector<int32_t> toks = to_tokens(tokens);
            const int n = int(toks.size()), V = mdl.n_vocab();
            if (n < 2 || first < 0 || first >= n - 1) throw ArgumentError("score: need 0 <= first < len(tokens) - 1");
            py::array_t<double> logp(n - 1 - first);
            py::array_t<int32_t> top(n - 1 - first);
            double* lp = logp.mutable_data();
            int32_t* tp = top.mutable_data();
            {
              py::gil_scoped_release nogil;
              mdl.eval(toks.data(), n - 1, first, [&](int i, const float* l) {
                float mx = l[0];
                int32_t arg = 0;
                for (int j = 1; j < V; ++j)
                  if (l[j] > mx) { mx = l[j]; arg = j; }
                double s = 0.0;
                for (int j = 0; j < V; ++j) s += std::exp(double(l[j]) - mx);
                lp[i - first] = double(l[toks[size_t(i) + 1]]) - mx - std::log(s);
                tp[i - first] = arg;
              });
            }
            return py::make_tuple(logp, top);
          },
          py::arg("tokens"), py::arg("first"))
      .def(
          "observe",
          [](Model& mdl, const py::object& tokens, const py::function& fn) {
            // Calibration capture: fn(layer, site, x) for every linear input,
            // x a fresh float32 [n_tokens, dim] array (site: 0 attention input,
            // 1 attention output, 2 FFN input, 3 down projection input, 4 the LM
            // head's input, shown with layer = n_layer).
            std::vector<int32_t> toks = to_tokens(tokens);
            if (toks.empty()) throw ArgumentError("observe needs at least one token");
            py::gil_scoped_release nogil;
            mdl.observe(toks.data(), int(toks.size()),
                        [&](int layer, Model::LinearInput site, const float* x, int n, int dim) {
                          py::gil_scoped_acquire gil;
                          py::array_t<float> a({n, dim});
                          std::copy(x, x + size_t(n) * dim, a.mutable_data());
                          fn(layer, static_cast<int>(site), a);
                        });
          },
          py::arg("tokens"), py::arg("fn"),
          "Append tokens (no logits) and call fn(layer, site, x) with each linear layer's input.");

  m.def(
      "sample_token",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> logits, const py::object& history,
         float temperature, int top_k, float top_p, float min_p, float repeat_penalty, int repeat_last_n,
         uint64_t seed, int n_draws) {
        // Draws n_draws tokens from one Sampler (one RNG stream): lets tests
        // compare the sampling distribution with an independent computation.
        if (logits.ndim() != 1 || logits.size() == 0) throw ArgumentError("logits must be a non-empty 1-D array");
        if (n_draws < 1) throw ArgumentError("n_draws must be >= 1");
        SamplingParams p;
        p.temperature = temperature;
        p.top_k = top_k;
        p.top_p = top_p;
        p.min_p = min_p;
        p.repeat_penalty = repeat_penalty;
        p.repeat_last_n = repeat_last_n;
        p.seed = seed;
        Sampler sampler(p);
        std::vector<int32_t> hist = to_tokens(history);
        std::vector<int32_t> out(static_cast<size_t>(n_draws), 0);
        for (auto& t : out) t = sampler.sample(logits.data(), int(logits.size()), hist);
        return out;
      },
      py::arg("logits"), py::arg("history") = std::vector<int32_t>(), py::arg("temperature") = 0.8f,
      py::arg("top_k") = 40, py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f, py::arg("repeat_penalty") = 1.0f,
      py::arg("repeat_last_n") = 64, py::arg("seed") = 0xFFFFFFFFull, py::arg("n_draws") = 1);

  py::class_<Generator>(m, "Generator")
      .def(py::init([](Model& mdl, const py::object& prompt, int max_tokens, std::vector<int32_t> stop_ids,
                       float temperature, int top_k, float top_p, float min_p, float repeat_penalty,
                       int repeat_last_n, uint64_t seed) {
             GenerateOptions o;
             o.max_tokens = max_tokens;
             o.stop_ids = std::move(stop_ids);
             o.sampling.temperature = temperature;
             o.sampling.top_k = top_k;
             o.sampling.top_p = top_p;
             o.sampling.min_p = min_p;
             o.sampling.repeat_penalty = repeat_penalty;
             o.sampling.repeat_last_n = repeat_last_n;
             o.sampling.seed = seed;
             return std::make_unique<Generator>(mdl, to_tokens(prompt), o);
           }),
           py::keep_alive<1, 2>(), py::arg("model"), py::arg("prompt"), py::arg("max_tokens") = 128,
           py::arg("stop_ids") = std::vector<int32_t>(), py::arg("temperature") = 0.8f, py::arg("top_k") = 40,
           py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f, py::arg("repeat_penalty") = 1.0f,
           py::arg("repeat_last_n") = 64, py::arg("seed") = 0xFFFFFFFFull)
      .def("next", [](Generator& g) {
             py::gil_scoped_release nogil;
             return g.next();
           }, "Next token id, or -1 when finished.")
      .def("run", [](Generator& g) {
             // The whole loop in C++ with no Python per token (for benchmarks).
             std::vector<int32_t> out;
             py::gil_scoped_release nogil;
             for (int32_t t; (t = g.next()) >= 0;) out.push_back(t);
             return out;
           })
      .def_property_readonly("finish_reason", &Generator::finish_reason)
      .def_property_readonly("n_generated", &Generator::n_generated)
      .def_property_readonly("n_prompt_evaluated", &Generator::n_prompt_evaluated);
}

}  // namespace mce::py_bind
