// The fused triplet-basis aggregation of DimeNet++ / SphereNet on CPU (see dig/ops/triplet_basis.py):
//
//   Y[e, b, :] = sum_{t in row e} s[t, b] * x[kj[t], :]        (triplets t sorted by their edge j -> i, e)
//   out[e, c]  = sum_b w[c, b] * Y[e, b, c]
//
// so that out[e] = sum_t x[kj[t]] * (w s[t]) without building the [T, C] basis embedding, the [T, C] gather or
// the [T, C] product. The backward kernels walk the triplets once in the same row order (grad_s) and once in
// the order of their edge k -> j (grad_x), so that every output element is written by one thread only.
#include <torch/extension.h>
#include <ATen/Parallel.h>

namespace {

constexpr int64_t LANES = 8;

template <typename scalar_t>
void forward_kernel(const int64_t* rowptr, const int64_t* kj, const scalar_t* x, const scalar_t* s,
                    const scalar_t* w, scalar_t* out, scalar_t* y, int64_t rows, int64_t B, int64_t C) {
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      scalar_t* ye = y + e * B * C;
      for (int64_t i = 0; i < B * C; ++i) ye[i] = 0;
      for (int64_t t = rowptr[e]; t < rowptr[e + 1]; ++t) {
        const scalar_t* xr = x + kj[t] * C;
        const scalar_t* st = s + t * B;
        for (int64_t b = 0; b < B; ++b) {
          const scalar_t sb = st[b];
          scalar_t* yb = ye + b * C;
          for (int64_t c = 0; c < C; ++c) yb[c] += sb * xr[c];
        }
      }
      scalar_t* oe = out + e * C;
      for (int64_t c = 0; c < C; ++c) oe[c] = 0;
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t* yb = ye + b * C;
        for (int64_t c = 0; c < C; ++c) oe[c] += w[c * B + b] * yb[c];
      }
    }
  });
}

// grad_s[t, b] = sum_c G[e_t, b, c] * x[kj[t], c] with G[e, b, c] = grad_out[e, c] * w[c, b]
template <typename scalar_t>
void grad_s_kernel(const int64_t* rowptr, const int64_t* kj, const scalar_t* x, const scalar_t* g,
                   scalar_t* grad_s, int64_t rows, int64_t B, int64_t C) {
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const scalar_t* ge = g + e * B * C;
      for (int64_t t = rowptr[e]; t < rowptr[e + 1]; ++t) {
        const scalar_t* xr = x + kj[t] * C;
        scalar_t* gs = grad_s + t * B;
        for (int64_t b = 0; b < B; ++b) {
          // LANES independent partial sums, so that the compiler vectorises the dot product without reordering
          // a single floating-point sum (the order is fixed: same numbers on every run and thread count)
          const scalar_t* gb = ge + b * C;
          scalar_t lanes[LANES] = {0};
          int64_t c = 0;
          for (; c + LANES <= C; c += LANES)
            for (int64_t l = 0; l < LANES; ++l) lanes[l] += gb[c + l] * xr[c + l];
          scalar_t acc = 0;
          for (; c < C; ++c) acc += gb[c] * xr[c];
          for (int64_t l = 0; l < LANES; ++l) acc += lanes[l];
          gs[b] = acc;
        }
      }
    }
  });
}

// grad_x[k, c] = sum_{t: kj[t] = k} sum_b G[e_t, b, c] * s[t, b], walking the triplets grouped by kj
// (colptr over the source edges, perm: the triplets in that order, ji: each triplet's row).
template <typename scalar_t>
void grad_x_kernel(const int64_t* colptr, const int64_t* perm, const int64_t* ji, const scalar_t* s,
                   const scalar_t* g, scalar_t* grad_x, int64_t sources, int64_t B, int64_t C) {
  at::parallel_for(0, sources, 64, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      scalar_t* gx = grad_x + k * C;
      for (int64_t c = 0; c < C; ++c) gx[c] = 0;
      for (int64_t p = colptr[k]; p < colptr[k + 1]; ++p) {
        const int64_t t = perm[p];
        const scalar_t* ge = g + ji[t] * B * C;
        const scalar_t* st = s + t * B;
        for (int64_t b = 0; b < B; ++b) {
          const scalar_t sb = st[b];
          const scalar_t* gb = ge + b * C;
          for (int64_t c = 0; c < C; ++c) gx[c] += sb * gb[c];
        }
      }
    }
  });
}

void check(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), name, " must be a contiguous CPU tensor");
}

}  // namespace

std::vector<torch::Tensor> triplet_basis_forward(torch::Tensor rowptr, torch::Tensor kj, torch::Tensor x,
                                                 torch::Tensor s, torch::Tensor w) {
  for (auto& [t, n] : {std::pair{rowptr, "rowptr"}, {kj, "kj"}, {x, "x"}, {s, "s"}, {w, "w"}}) check(t, n);
  const int64_t rows = rowptr.numel() - 1, B = s.size(1), C = x.size(1);
  auto out = torch::empty({rows, C}, x.options());
  auto y = torch::empty({rows, B, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "triplet_basis_forward", [&] {
    forward_kernel<scalar_t>(rowptr.data_ptr<int64_t>(), kj.data_ptr<int64_t>(), x.data_ptr<scalar_t>(),
                             s.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                             y.data_ptr<scalar_t>(), rows, B, C);
  });
  return {out, y};
}

torch::Tensor triplet_basis_grad_s(torch::Tensor rowptr, torch::Tensor kj, torch::Tensor x, torch::Tensor g) {
  for (auto& [t, n] : {std::pair{rowptr, "rowptr"}, {kj, "kj"}, {x, "x"}, {g, "g"}}) check(t, n);
  const int64_t rows = rowptr.numel() - 1, B = g.size(1), C = g.size(2);
  auto grad_s = torch::empty({kj.numel(), B}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "triplet_basis_grad_s", [&] {
    grad_s_kernel<scalar_t>(rowptr.data_ptr<int64_t>(), kj.data_ptr<int64_t>(), x.data_ptr<scalar_t>(),
                            g.data_ptr<scalar_t>(), grad_s.data_ptr<scalar_t>(), rows, B, C);
  });
  return grad_s;
}

torch::Tensor triplet_basis_grad_x(torch::Tensor colptr, torch::Tensor perm, torch::Tensor ji, torch::Tensor s,
                                   torch::Tensor g) {
  for (auto& [t, n] : {std::pair{colptr, "colptr"}, {perm, "perm"}, {ji, "ji"}, {s, "s"}, {g, "g"}}) check(t, n);
  const int64_t sources = colptr.numel() - 1, B = g.size(1), C = g.size(2);
  auto grad_x = torch::empty({sources, C}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "triplet_basis_grad_x", [&] {
    grad_x_kernel<scalar_t>(colptr.data_ptr<int64_t>(), perm.data_ptr<int64_t>(), ji.data_ptr<int64_t>(),
                            s.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(), sources, B, C);
  });
  return grad_x;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &triplet_basis_forward, "fused triplet-basis aggregation (out, Y)");
  m.def("grad_s", &triplet_basis_grad_s, "gradient with respect to the per-triplet basis s");
  m.def("grad_x", &triplet_basis_grad_x, "gradient with respect to the edge features x");
}
