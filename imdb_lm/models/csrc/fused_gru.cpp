// A GRU layer's recurrence on the CPU, all directions at once, with the gate arithmetic fused.
//
// Why by hand: torch runs nn.GRU on the CPU as one small matrix product plus about ten separate
// element-wise operations per time step and direction, each recorded for autograd (oneDNN's fused
// RNN layer is wired into torch for LSTM only). Here every step is one batched product for all
// directions and one pass over the gates; the backward pass is written out, and the recurrent
// weights' gradient is left to one large product over all steps (done by the caller).
//
// Layout, batch first with the directions innermost, as the layer's output is laid out:
// gi [B, T, D, 3H] (input projections of both directions from one product, input bias included),
// out [B, T, D, H]; w_t [D, H, 3H] (recurrent weights, transposed), b_hh [D, 3H]. Direction 1
// (when D = 2) reads each review backwards within its own length and writes its output back in
// place: at step t it is at position len - 1 - t while t < len, then at t (padding, in order), as
// `reverse_within_length` in recurrent.py orders it; no reversed copies are made. Gates in torch's order
// (reset r, update z, new n):
//   r = s(gi_r + W_hr h + b_hr)   z = s(gi_z + W_hz h + b_hz)
//   n = tanh(gi_n + r * (W_hn h + b_hn))   h' = n + z * (h - n)
// The matrix products run in the dtype of gi and w_t (float32, or bfloat16 under bf16 autocast,
// like autocast's own products); the gate arithmetic, the state and the outputs stay float32.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>
#include <vector>

#if defined(_OPENMP) && defined(__clang__)
// clang's OpenMP runtime (libomp) is not the one torch uses (GNU libgomp), so torch.set_num_threads
// does not reach it: every entry point hands it torch's thread count.
#define IMDB_LM_SYNC_THREADS() omp_set_num_threads(at::get_num_threads())
#else
#define IMDB_LM_SYNC_THREADS()
#endif

// The row functions are compiled for three x86-64 instruction sets and the best one the CPU has is
// picked once, at the first call: x86-64-v4's AVX-512 (whose 16-bit integer operations vectorize the
// bf16 rounding), x86-64-v3's AVX2 + FMA, and the baseline. Done with `target` attributes and
// __builtin_cpu_supports, which GCC >= 9 and clang >= 14 both have, rather than GCC 12's
// target_clones("arch=x86-64-v4"), which GCC 11 and clang cannot dispatch. Other compilers and
// targets build the baseline only.
#if defined(__x86_64__) && (defined(__clang__) ? __clang_major__ >= 14 : (defined(__GNUC__) && __GNUC__ >= 9))
#define IMDB_LM_ISA_DISPATCH 1
#endif
#define IMDB_LM_V4 "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
#define IMDB_LM_V3 "avx2,fma"
#define IMDB_LM_INLINE inline __attribute__((always_inline))

namespace {

// exp with Cephes' single-precision polynomial (about 1 ulp); written so that compilers vectorize
// it (built with -fno-trapping-math, which lets the clamps below become vector blends).
// Out-of-range inputs are clamped; NaN passes through (every comparison with NaN is false).
IMDB_LM_INLINE float exp_approx(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  // x / ln 2 rounded to the nearest integer (adding and removing 1.5 * 2^23 rounds, and unlike
  // std::floor it vectorizes without -ffast-math).
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

IMDB_LM_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
IMDB_LM_INLINE float tanh_approx(float x) { return 1.0f - 2.0f / (exp_approx(2.0f * x) + 1.0f); }

// Storage of the matrix-product operands: float, or bfloat16 held as its 16 bits.
IMDB_LM_INLINE float load(const float* p, int64_t j) { return p[j]; }
IMDB_LM_INLINE float load(const uint16_t* p, int64_t j) {
  uint32_t bits = static_cast<uint32_t>(p[j]) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}
IMDB_LM_INLINE void store(float* p, int64_t j, float v) { p[j] = v; }
IMDB_LM_INLINE void store(uint16_t* p, int64_t j, float v) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  p[j] = static_cast<uint16_t>(bits >> 16);
}

// One row (one direction, one review) of one step forward. h: the float32 state, updated in
// place; hm: the state in the product dtype for the next step's product; out_m: the output in the
// product dtype, kept for the weight gradient.
template <typename M, bool Save>
IMDB_LM_INLINE void forward_row(const M* __restrict__ gi, const M* __restrict__ gh, const float* __restrict__ b,
                                float* __restrict__ h, M* __restrict__ hm, float* __restrict__ out,
                                M* __restrict__ out_m, float* __restrict__ rz, float* __restrict__ n_out,
                                float* __restrict__ ghn, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    float r = sigmoid(load(gi, j) + load(gh, j) + b[j]);
    float z = sigmoid(load(gi, H + j) + load(gh, H + j) + b[H + j]);
    float hn = load(gh, 2 * H + j) + b[2 * H + j];
    float n = tanh_approx(load(gi, 2 * H + j) + r * hn);
    float hv = n + z * (h[j] - n);
    h[j] = hv;
    out[j] = hv;
    store(hm, j, hv);
    if constexpr (Save) {
      store(out_m, j, hv);
      rz[j] = r;
      rz[H + j] = z;
      n_out[j] = n;
      ghn[j] = hn;
    }
  }
}

// One row of one step backward. g = dh_direct + dh_product + grad_out is the gradient reaching
// this step's state. Writes the gradients of the gate pre-activations: input side dgi (r, z, n),
// recurrent side (r and z equal dgi's; n is dgi_n * r) into dgh_step, for the product that carries
// the gradient to the previous step, and into dgh_prev (the previous step's output position, for
// the weight gradient; null at the first step, where h_prev is zeros); accumulates the recurrent bias gradient db;
// leaves the part of the gradient that bypasses the product in dh_direct.
template <typename M>
IMDB_LM_INLINE void backward_row(float* __restrict__ dh_direct, const M* __restrict__ dh_product,
                                 const float* __restrict__ gout, const float* __restrict__ rz,
                                 const float* __restrict__ n_in, const float* __restrict__ ghn,
                                 const float* __restrict__ h_prev, M* __restrict__ dgi, M* __restrict__ dgh_prev,
                                 M* __restrict__ dgh_step, float* __restrict__ db, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    float g = dh_direct[j] + load(dh_product, j) + gout[j];
    float r = rz[j], z = rz[H + j], n = n_in[j];
    float hp = h_prev[j];
    float dgn = g * (1.0f - z) * (1.0f - n * n);
    float dgr = dgn * ghn[j] * r * (1.0f - r);
    float dgz = g * (hp - n) * z * (1.0f - z);
    float dhn = dgn * r;
    store(dgi, j, dgr);
    store(dgi, H + j, dgz);
    store(dgi, 2 * H + j, dgn);
    store(dgh_step, j, dgr);
    store(dgh_step, H + j, dgz);
    store(dgh_step, 2 * H + j, dhn);
    db[j] += dgr;
    db[H + j] += dgz;
    db[2 * H + j] += dhn;
    dh_direct[j] = g * z;
  }
  if (dgh_prev) {
    for (int64_t j = 0; j < 3 * H; ++j) dgh_prev[j] = dgh_step[j];
  }
}

// The row functions of one instruction set, as function templates over the product dtype M.
#define IMDB_LM_ROWS(ISA, ATTR)                                                                               \
  template <typename M>                                                                                       \
  ATTR void forward_train_##ISA(const M* gi, const M* gh, const float* b, float* h, M* hm, float* out,         \
                                M* out_m, float* rz, float* n, float* ghn, int64_t H) {                        \
    forward_row<M, true>(gi, gh, b, h, hm, out, out_m, rz, n, ghn, H);                                          \
  }                                                                                                           \
  template <typename M>                                                                                       \
  ATTR void forward_infer_##ISA(const M* gi, const M* gh, const float* b, float* h, M* hm, float* out,         \
                                M* out_m, float* rz, float* n, float* ghn, int64_t H) {                        \
    forward_row<M, false>(gi, gh, b, h, hm, out, out_m, rz, n, ghn, H);                                         \
  }                                                                                                           \
  template <typename M>                                                                                       \
  ATTR void backward_step_##ISA(float* dd, const M* dp, const float* go, const float* rz, const float* n,      \
                                const float* ghn, const float* hp, M* dgi, M* dgh_prev, M* ds, float* db,      \
                                int64_t H) {                                                                  \
    backward_row<M>(dd, dp, go, rz, n, ghn, hp, dgi, dgh_prev, ds, db, H);                                     \
  }
IMDB_LM_ROWS(baseline, )
#ifdef IMDB_LM_ISA_DISPATCH
IMDB_LM_ROWS(v3, __attribute__((target(IMDB_LM_V3))))
IMDB_LM_ROWS(v4, __attribute__((target(IMDB_LM_V4))))
#endif

// The instruction set the row functions run with on this CPU (the best one compiled in).
enum class Isa { baseline, v3, v4 };

Isa detect_isa() {
#ifdef IMDB_LM_ISA_DISPATCH
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return Isa::v4;
  }
  if (v3) return Isa::v3;
#endif
  return Isa::baseline;
}

Isa isa() {
  static const Isa chosen = detect_isa();
  return chosen;
}

template <typename M>
struct Rows {
  void (*forward_train)(const M*, const M*, const float*, float*, M*, float*, M*, float*, float*, float*, int64_t);
  void (*forward_infer)(const M*, const M*, const float*, float*, M*, float*, M*, float*, float*, float*, int64_t);
  void (*backward_step)(float*, const M*, const float*, const float*, const float*, const float*, const float*, M*,
                        M*, M*, float*, int64_t);
};

template <typename M>
Rows<M> rows() {
#ifdef IMDB_LM_ISA_DISPATCH
  if (isa() == Isa::v4) return {forward_train_v4<M>, forward_infer_v4<M>, backward_step_v4<M>};
  if (isa() == Isa::v3) return {forward_train_v3<M>, forward_infer_v3<M>, backward_step_v3<M>};
#endif
  return {forward_train_baseline<M>, forward_infer_baseline<M>, backward_step_baseline<M>};
}

const char* isa_name() {
  switch (isa()) {
    case Isa::v4: return "x86-64-v4";
    case Isa::v3: return "x86-64-v3";
    default: return "baseline";
  }
}

template <typename M>
M* ptr(const at::Tensor& t) {
  return t.numel() ? reinterpret_cast<M*>(t.data_ptr()) : nullptr;
}

void check(const at::Tensor& t, const char* name, int64_t dim, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == dtype && t.is_contiguous() && t.dim() == dim,
              "fused_gru: ", name, " must be a contiguous ", dtype, " CPU tensor with ", dim, " dimensions");
}

constexpr int64_t kRowsPerTask = 16;

// Position of step t of direction d in a review of `len` tokens (see the layout note above).
inline int64_t position(int64_t d, int64_t t, int64_t len) { return (d == 1 && t < len) ? len - 1 - t : t; }

template <typename M>
std::vector<at::Tensor> forward_impl(const at::Tensor& gi, const at::Tensor& w_t, const at::Tensor& b_hh,
                                     const at::Tensor& lengths, bool save) {
  const int64_t B = gi.size(0), T = gi.size(1), D = gi.size(2), H = gi.size(3) / 3;
  auto f32 = gi.options().dtype(at::kFloat);
  auto out = at::empty({B, T, D, H}, f32);
  auto none = at::empty({0}, f32);
  auto out_m = save ? at::empty({B, T, D, H}, gi.options()) : at::empty({0}, gi.options());
  auto rz = save ? at::empty({B, T, D, 2 * H}, f32) : none;
  auto nn = save ? at::empty({B, T, D, H}, f32) : none;
  auto ghn = save ? at::empty({B, T, D, H}, f32) : none;
  auto h = at::zeros({D, B, H}, f32);
  auto hm = at::zeros({D, B, H}, gi.options());
  auto gh = at::empty({D, B, 3 * H}, gi.options());
  const int64_t* len = lengths.data_ptr<int64_t>();
  const M *gi_p = ptr<M>(gi), *gh_p = ptr<M>(gh);
  const float* b_p = b_hh.data_ptr<float>();
  M *hm_p = ptr<M>(hm), *om_p = ptr<M>(out_m);
  float *out_p = out.data_ptr<float>(), *h_p = h.data_ptr<float>();
  float *rz_p = ptr<float>(rz), *n_p = ptr<float>(nn), *ghn_p = ptr<float>(ghn);
  const Rows<M> f = rows<M>();
  for (int64_t t = 0; t < T; ++t) {
    at::bmm_out(gh, hm, w_t);
    at::parallel_for(0, D * B, kRowsPerTask, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t d = row / B, i = row % B, at = (i * T + position(d, t, len[i])) * D + d;  // [i, pos, d]
        const M *g = gi_p + at * 3 * H, *gh_row = gh_p + row * 3 * H;
        if (save) {
          f.forward_train(g, gh_row, b_p + d * 3 * H, h_p + row * H, hm_p + row * H, out_p + at * H,
                        om_p + at * H, rz_p + at * 2 * H, n_p + at * H, ghn_p + at * H, H);
        } else {
          f.forward_infer(g, gh_row, b_p + d * 3 * H, h_p + row * H, hm_p + row * H, out_p + at * H,
                        nullptr, nullptr, nullptr, nullptr, H);
        }
      }
    });
  }
  return {out, out_m, rz, nn, ghn};
}

template <typename M>
std::vector<at::Tensor> backward_impl(const at::Tensor& grad_out, const at::Tensor& w, const at::Tensor& out,
                                      const at::Tensor& rz, const at::Tensor& nn, const at::Tensor& ghn,
                                      const at::Tensor& lengths) {
  const int64_t B = grad_out.size(0), T = grad_out.size(1), D = grad_out.size(2), H = grad_out.size(3);
  auto f32 = grad_out.options();
  auto mo = w.options();
  auto dgi = at::empty({B, T, D, 3 * H}, mo);
  auto dgh = at::empty({B, T, D, 3 * H}, mo);  // at the previous step's output position
  auto db = at::zeros({D, 3 * H}, f32);
  auto dh_direct = at::zeros({D, B, H}, f32);
  auto dh_product = at::zeros({D, B, H}, mo);
  auto dgh_step = at::empty({D, B, 3 * H}, mo);
  auto zeros = at::zeros({H}, f32);  // the state before the first step
  const int64_t* len = lengths.data_ptr<int64_t>();
  const float *go_p = grad_out.data_ptr<float>(), *out_p = out.data_ptr<float>();
  const float *rz_p = rz.data_ptr<float>(), *n_p = nn.data_ptr<float>(), *ghn_p = ghn.data_ptr<float>();
  M *dgi_p = ptr<M>(dgi), *dgh_p = ptr<M>(dgh), *ds_p = ptr<M>(dgh_step), *dp_p = ptr<M>(dh_product);
  float *dd_p = dh_direct.data_ptr<float>(), *db_p = db.data_ptr<float>();
  const Rows<M> f = rows<M>();
  for (int64_t d = 0; d < D; ++d) {  // the last step's output feeds no later step
    for (int64_t i = 0; i < B; ++i) {
      M* last = dgh_p + ((i * T + position(d, T - 1, len[i])) * D + d) * 3 * H;
      std::memset(last, 0, 3 * H * sizeof(M));
    }
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    // Rows split across threads by direction: each direction's bias gradient has one writer.
    at::parallel_for(0, D, 1, [&](int64_t d_begin, int64_t d_end) {
     for (int64_t d = d_begin; d < d_end; ++d) {
      for (int64_t i = 0; i < B; ++i) {
        const int64_t row = d * B + i, at = (i * T + position(d, t, len[i])) * D + d;
        const int64_t prev = t > 0 ? (i * T + position(d, t - 1, len[i])) * D + d : -1;
        f.backward_step(dd_p + row * H, dp_p + row * H, go_p + at * H, rz_p + at * 2 * H, n_p + at * H,
                      ghn_p + at * H, prev >= 0 ? out_p + prev * H : zeros.data_ptr<float>(), dgi_p + at * 3 * H,
                      prev >= 0 ? dgh_p + prev * 3 * H : nullptr, ds_p + row * 3 * H, db_p + d * 3 * H, H);
      }
     }
    });
    if (t > 0) at::bmm_out(dh_product, dgh_step, w);
  }
  return {dgi, dgh, db};
}

void check_lengths(const at::Tensor& lengths, int64_t B, int64_t T) {
  TORCH_CHECK(lengths.device().is_cpu() && lengths.scalar_type() == at::kLong && lengths.dim() == 1 &&
                  lengths.size(0) == B && lengths.is_contiguous(),
              "fused_gru: lengths must be a contiguous int64 CPU tensor of the batch size");
  TORCH_CHECK(B == 0 || (lengths.min().item<int64_t>() >= 0 && lengths.max().item<int64_t>() <= T),
              "fused_gru: lengths must lie in [0, T]");
}

}  // namespace

// Returns out [B, T, D, H] (float32) and, when `save`, out_m (out in the product dtype), rz
// [B, T, D, 2H], n [B, T, D, H] and ghn [B, T, D, H] (W_hn h + b_hn), the last three float32.
std::vector<at::Tensor> gru_forward(at::Tensor gi, at::Tensor w_t, at::Tensor b_hh, at::Tensor lengths, bool save) {
  IMDB_LM_SYNC_THREADS();
  const auto dtype = gi.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16, "fused_gru: gi must be float32 or bfloat16");
  check(gi, "gi", 4, dtype);
  check(w_t, "w_t", 3, dtype);
  check(b_hh, "b_hh", 2, at::kFloat);
  const int64_t D = gi.size(2), H = gi.size(3) / 3;
  TORCH_CHECK(D == 1 || D == 2, "fused_gru: one or two directions");
  TORCH_CHECK(gi.size(3) == 3 * H && w_t.size(0) == D && w_t.size(1) == H && w_t.size(2) == 3 * H &&
                  b_hh.size(0) == D && b_hh.size(1) == 3 * H,
              "fused_gru: shapes of gi, w_t and b_hh disagree");
  check_lengths(lengths, gi.size(0), gi.size(1));
  return dtype == at::kFloat ? forward_impl<float>(gi, w_t, b_hh, lengths, save)
                             : forward_impl<uint16_t>(gi, w_t, b_hh, lengths, save);
}

// Returns dgi [B, T, D, 3H] (gradient of the input projections) and dgh [B, T, D, 3H] (of the
// recurrent products W_h h + b_h, each stored at the position of the output that step started
// from, zero where none did), both in the product dtype, and db [D, 3H] (the recurrent bias
// gradient, float32). The recurrent weights' gradient is then dgh^T out_m per direction.
std::vector<at::Tensor> gru_backward(at::Tensor grad_out, at::Tensor w, at::Tensor out, at::Tensor rz,
                                     at::Tensor nn, at::Tensor ghn, at::Tensor lengths) {
  IMDB_LM_SYNC_THREADS();
  check(grad_out, "grad_out", 4, at::kFloat);
  check(out, "out", 4, at::kFloat);
  const auto dtype = w.scalar_type();
  check(w, "w", 3, dtype);
  check_lengths(lengths, grad_out.size(0), grad_out.size(1));
  return dtype == at::kFloat ? backward_impl<float>(grad_out, w, out, rz, nn, ghn, lengths)
                             : backward_impl<uint16_t>(grad_out, w, out, rz, nn, ghn, lengths);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &gru_forward, "fused GRU recurrence, forward");
  m.def("backward", &gru_backward, "fused GRU recurrence, backward");
  m.def("isa", &isa_name, "the instruction set the gate passes run with on this CPU");
}
