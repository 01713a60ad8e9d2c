// Differentiable collectives, synchronised BatchNorm and the gradient reduction (contract in
// gradstyle/dist/dist.hpp). Only the process group (process_group.cpp) talks to MPI or NCCL.
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::dist {

using autograd::any_requires_grad;
using autograd::record;
using V = std::vector<Tensor>;

Tensor all_reduce_sum(const Tensor& x, ProcessGroup& pg) {
  GS_CHECK(x.defined(), dist::DistError, "all_reduce_sum: undefined tensor");
  Tensor y = x.detach().contiguous().clone();
  {
    autograd::NoGradGuard ng;
    pg.all_reduce_sum_(y);
  }
  if (any_requires_grad({&x})) {
    ProcessGroup* g = &pg;
    // d/dx_r of sum_k L_k(y) = sum_k dL_k/dy: the gradient, summed over ranks.
    record("all_reduce_sum", y, {x}, [g](const Tensor& grad) { return V{all_reduce_sum(grad, *g)}; });
  }
  return y;
}

Tensor all_gather(const Tensor& x, ProcessGroup& pg) {
  GS_CHECK(x.defined() && x.dim() >= 1, dist::DistError, "all_gather: expected a tensor with at least 1 dim");
  Tensor y;
  {
    autograd::NoGradGuard ng;
    y = pg.all_gather_rows(x.detach().contiguous());
  }
  if (any_requires_grad({&x})) {
    ProcessGroup* g = &pg;
    const int64_t rows = x.size(0), start = int64_t(pg.rank()) * rows;
    // Every rank's loss may depend on this rank's rows: their gradients add up over ranks.
    record("all_gather", y, {x},
           [g, rows, start](const Tensor& grad) { return V{narrow(all_reduce_sum(grad, *g), 0, start, rows)}; });
  }
  return y;
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps, ProcessGroup& pg) {
  if (!training || pg.size() == 1) return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps);
  const char* op = "sync_batch_norm";
  GS_CHECK(x.dim() >= 2, ShapeError, op, ": expected an input [N, C, ...] with at least 2 dims, got ", shape_str(x.shape()));
  GS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, DTypeError, op, ": expected float32 or float64, got ",
           dtype_name(x.dtype()));
  GS_CHECK(std::isfinite(eps) && eps >= 0, ValueError, op, ": eps must be finite and >= 0, got ", eps);
  GS_CHECK(momentum >= 0 && momentum <= 1, ValueError, op, ": momentum must be in [0, 1], got ", momentum);
  const int64_t c = x.size(1);
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&weight, "weight"}, {&bias, "bias"},
                                {&running_mean, "running_mean"}, {&running_var, "running_var"}}) {
    if (!t->defined()) continue;
    GS_CHECK(t->dim() == 1 && t->size(0) == c, ShapeError, op, ": ", name, " must have shape [", c, "], got ",
             shape_str(t->shape()), " for input ", shape_str(x.shape()));
    GS_CHECK(t->dtype() == x.dtype() && t->device() == x.device(), DTypeError, op, ": ", name, " is ",
             dtype_name(t->dtype()), " on ", t->device().str(), " but the input is ", dtype_name(x.dtype()), " on ",
             x.device().str());
  }
  GS_CHECK(!(running_mean.defined() && running_mean.requires_grad()) &&
               !(running_var.defined() && running_var.requires_grad()),
           ValueError, op, ": running statistics are buffers and must not require grad");
  Shape dims, bshape;
  int64_t local = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d != 1) {
      dims.push_back(d);
      local *= x.size(d);
    }
    bshape.push_back(d == 1 ? c : 1);
  }
  // Every rank holds the same number of samples (the trainers give each rank b of the N b); the
  // count is local x N, computed here rather than reduced.
  const double total = double(local) * double(pg.size());
  GS_CHECK(total > 1, ValueError, op, ": expected more than 1 value per channel over the group when training, got ",
           total);
  Tensor mean = mul_scalar(all_reduce_sum(sum(x, dims), pg), 1.0 / total);
  Tensor centred = sub(x, reshape(mean, bshape));
  Tensor var = mul_scalar(all_reduce_sum(sum(square(centred), dims), pg), 1.0 / total);  // biased
  Tensor out = mul(centred, reshape(rsqrt(add_scalar(var, eps)), bshape));
  if (weight.defined()) out = mul(out, reshape(weight, bshape));
  if (bias.defined()) out = add(out, reshape(bias, bshape));
  {
    autograd::NoGradGuard ng;
    Tensor rm = running_mean, rv = running_var;
    if (rm.defined()) rm.mul_(1.0 - momentum).add_(mean.detach(), momentum);
    if (rv.defined()) rv.mul_(1.0 - momentum).add_(mul_scalar(var.detach(), total / (total - 1)), momentum);
  }
  return out;
}

namespace {

// FNV-1a over bytes: cheap fingerprints for the layout and replica checks.
uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;

// Names the first rank whose value differs from rank 0's.
void require_same(ProcessGroup& pg, uint64_t v, const std::string& what) {
  const std::vector<int64_t> all = pg.all_gather_i64(int64_t(v));
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) throw DistError(what + ": rank " + std::to_string(r) + " differs from rank 0");
}

}  // namespace

ReduceStats all_reduce_gradients(const std::vector<std::pair<std::string, Tensor>>& params, ProcessGroup& pg,
                                 size_t bucket_bytes) {
  ReduceStats st;
  if (pg.size() == 1) return st;
  const auto t0 = std::chrono::steady_clock::now();
  autograd::NoGradGuard ng;
  // Which parameters have gradients, and their sizes, must agree everywhere: a bucket packed
  // differently on two ranks would add unrelated numbers.
  uint64_t layout = kFnvBasis;
  struct Item {
    Tensor param, grad;
  };
  std::map<std::pair<int, std::string>, std::vector<Item>> groups;  // (dtype, device) -> items, in order
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = params[i].second.grad();
    if (!g.defined()) continue;
    const int64_t n = g.numel();
    layout = fnv(layout, &i, sizeof(i));
    layout = fnv(layout, &n, sizeof(n));
    groups[{int(g.dtype()), g.device().str()}].push_back({params[i].second, g});
    ++st.tensors;
    st.elements += n;
  }
  require_same(pg, layout, "all_reduce_gradients: the parameters with gradients or their sizes");
  for (auto& [key, items] : groups) {
    const DType dt = items.front().grad.dtype();
    const Device dev = items.front().grad.device();
    const int64_t cap = std::max<int64_t>(1, int64_t(bucket_bytes / dtype_size(dt)));
    size_t i = 0;
    while (i < items.size()) {
      // A bucket: consecutive gradients up to `cap` elements (a larger one goes alone).
      size_t j = i;
      int64_t n = 0;
      while (j < items.size() && (j == i || n + items[j].grad.numel() <= cap)) n += items[j++].grad.numel();
      Tensor flat = Tensor::empty({n}, {dt, dev});
      int64_t off = 0;
      for (size_t k = i; k < j; ++k) {
        const int64_t m = items[k].grad.numel();
        flat.narrow(0, off, m).copy_(items[k].grad.reshape({m}));
        off += m;
      }
      pg.all_reduce_sum_(flat);
      off = 0;
      for (size_t k = i; k < j; ++k) {
        const int64_t m = items[k].grad.numel();
        Tensor p = items[k].param;
        p.set_grad(flat.narrow(0, off, m).reshape(items[k].grad.shape()).clone());
        off += m;
      }
      ++st.buckets;
      i = j;
    }
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

void check_replicas_equal(const std::vector<std::pair<std::string, Tensor>>& tensors, ProcessGroup& pg,
                          const std::string& what) {
  if (pg.size() == 1) return;
  uint64_t h = kFnvBasis;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) continue;
    Tensor c = t.detach().contiguous().cpu();
    h = fnv(h, name.data(), name.size());
    h = fnv(h, c.raw_data(), c.nbytes());
  }
  require_same(pg, h, what + ": the replicas are not bit-identical");
}

void check_same_text(const std::string& text, ProcessGroup& pg, const std::string& what) {
  if (pg.size() == 1) return;
  require_same(pg, fnv(kFnvBasis, text.data(), text.size()), what + ": differs between ranks");
}

void all_reduce_sum(std::map<std::string, double>& terms, ProcessGroup& pg) {
  if (pg.size() == 1) return;
  std::vector<double> v;
  for (const auto& [k, x] : terms) v.push_back(x);
  v = all_reduce_sum(v, pg);
  size_t i = 0;
  for (auto& [k, x] : terms) x = v[i++];
}

void broadcast_state(ProcessGroup& pg, int root, const std::function<std::vector<uint8_t>()>& serialize,
                     const std::function<void(const std::vector<uint8_t>&, const std::string&)>& deserialize) {
  if (pg.size() == 1) return;
  std::vector<uint8_t> bytes;
  if (pg.rank() == root) bytes = serialize();
  pg.broadcast_bytes(bytes, root);
  if (pg.rank() != root) deserialize(bytes, "the state broadcast by rank " + std::to_string(root));
}

std::vector<double> all_reduce_sum(const std::vector<double>& values, ProcessGroup& pg) {
  if (pg.size() == 1 || values.empty()) return values;
  Tensor t = Tensor::from_vector(values, {int64_t(values.size())});
  pg.all_reduce_sum_(t);
  return t.to_vector<double>();
}

}  // namespace gradstyle::dist
