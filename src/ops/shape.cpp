#include "gradstyle/ops/shape.hpp"

#include <algorithm>

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace ops_detail {
Tensor make_alias(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = x.dtype();
  return Tensor(impl);
}
}  // namespace ops_detail

namespace {

Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      GS_CHECK(infer < 0, ShapeError, op, ": only one -1 allowed in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      GS_CHECK(s[i] >= 0, ShapeError, op, ": negative size in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    GS_CHECK(known > 0 && numel % known == 0, ShapeError, op, ": cannot reshape ", shape_str(from), " into ",
             shape_str(shape));
    s[size_t(infer)] = numel / known;
  }
  GS_CHECK(shape_numel(s) == numel, ShapeError, op, ": cannot reshape ", shape_str(from), " (", numel,
           " elements) into ", shape_str(shape));
  return s;
}

// Strides for viewing (shape, strides) as new_shape without copying, or empty if impossible
// (the algorithm of PyTorch's computeStride: split the old dims into contiguous chunks).
Shape view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  if (shape_numel(old_shape) == 0) return contiguous_strides(new_shape);
  Shape ns(new_shape.size());
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[size_t(td)];
    if (td == 0 || (old_shape[size_t(td - 1)] != 1 &&
                    old_strides[size_t(td - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[size_t(view_d)] == 1)) {
        ns[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= new_shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return {};
      if (td > 0) {
        chunk_base_stride = old_strides[size_t(td - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return {};
  return ns;
}

Tensor alias_with_grad(const char* name, const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset,
                       autograd::BackwardFn fn) {
  Tensor out = make_alias(x, shape, strides, offset);
  if (any_requires_grad({&x})) record(name, out, {x}, std::move(fn));
  return out;
}

// Scatters g into zeros of `shape` at slice (dim, start, step); the backward of slice.
Tensor slice_scatter(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t step) {
  Tensor out = Tensor::zeros(shape, {g.dtype(), g.device()});
  Shape st = out.strides();
  int64_t off = start * st[size_t(dim)];
  st[size_t(dim)] *= step;
  Tensor dst = make_alias(out, g.shape(), st, off);
  if (g.numel() > 0) GS_DISPATCH(g.device(), copy, make_view(dst), make_view(g));
  if (any_requires_grad({&g})) {
    int64_t len = g.size(dim);
    record("slice_backward", out, {g}, [dim, start, step, len](const Tensor& gg) {
      return V{slice(gg, dim, start, start + (len - 1) * step + 1, step)};
    });
  }
  return out;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  check_defined(x, "view", "x");
  Shape s = infer_shape(shape, x.numel(), "view", x.shape());
  Shape st = x.is_contiguous() ? contiguous_strides(s) : view_strides(x.shape(), x.strides(), s);
  GS_CHECK(!st.empty() || s.empty(), ShapeError, "view: cannot view ", shape_str(x.shape()), " with strides ",
           shape_str(x.strides()), " as ", shape_str(s), " without a copy (use reshape)");
  Shape xs = x.shape();
  return alias_with_grad("view", x, s, st, x.offset(), [xs](const Tensor& g) { return V{reshape(g, xs)}; });
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape", "x");
  Shape s = infer_shape(shape, x.numel(), "reshape", x.shape());
  Shape st = x.is_contiguous() ? contiguous_strides(s) : view_strides(x.shape(), x.strides(), s);
  if (st.empty() && !s.empty()) return view(x.clone(), s);
  Shape xs = x.shape();
  return alias_with_grad("reshape", x, s, st, x.offset(), [xs](const Tensor& g) { return V{reshape(g, xs)}; });
}

Tensor permute(const Tensor& x, const Shape& dims) {
  check_defined(x, "permute", "x");
  GS_CHECK(int64_t(dims.size()) == x.dim(), ShapeError, "permute: ", dims.size(), " dims given for a tensor of shape ",
           shape_str(x.shape()));
  Shape s(dims.size()), st(dims.size()), inv(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    GS_CHECK(!used[size_t(d)], IndexError, "permute: dim ", d, " repeated in ", shape_str(dims));
    used[size_t(d)] = true;
    s[i] = x.size(d);
    st[i] = x.strides()[size_t(d)];
    inv[size_t(d)] = int64_t(i);
  }
  return alias_with_grad("permute", x, s, st, x.offset(), [inv](const Tensor& g) { return V{permute(g, inv)}; });
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  check_defined(x, "transpose", "x");
  int64_t a = wrap_dim(d0, x.dim(), "transpose"), b = wrap_dim(d1, x.dim(), "transpose");
  Shape p(size_t(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) p[size_t(i)] = i;
  std::swap(p[size_t(a)], p[size_t(b)]);
  return permute(x, p);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined(x, "slice", "x");
  int64_t d = wrap_dim(dim, x.dim(), "slice");
  GS_CHECK(x.dim() > 0, IndexError, "slice: cannot slice a 0-d tensor");
  GS_CHECK(step >= 1, ValueError, "slice: step must be >= 1, got ", step);
  int64_t n = x.size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  int64_t len = (end - start + step - 1) / step;
  Shape s = x.shape(), st = x.strides();
  s[size_t(d)] = len;
  st[size_t(d)] *= step;
  Shape xs = x.shape();
  return alias_with_grad("slice", x, s, st, x.offset() + start * x.strides()[size_t(d)],
                         [xs, d, start, step](const Tensor& g) { return V{slice_scatter(g, xs, d, start, step)}; });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined(x, "narrow", "x");
  int64_t d = wrap_dim(dim, x.dim(), "narrow");
  GS_CHECK(start >= 0 && length >= 0 && start + length <= x.size(d), IndexError, "narrow: range [", start, ", ",
           start + length, ") is outside dim ", d, " of size ", x.size(d), " (shape ", shape_str(x.shape()), ")");
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  check_defined(x, "select", "x");
  int64_t d = wrap_dim(dim, x.dim(), "select");
  int64_t n = x.size(d);
  GS_CHECK(index >= -n && index < n, IndexError, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  return squeeze(narrow(x, d, index, 1), d);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined(x, "expand", "x");
  GS_CHECK(int64_t(shape.size()) >= x.dim(), ShapeError, "expand: cannot expand ", shape_str(x.shape()), " to ",
           shape_str(shape), " (fewer dims)");
  size_t lead = shape.size() - size_t(x.dim());
  Shape s(shape.size()), st(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      GS_CHECK(shape[i] >= 0, ShapeError, "expand: invalid size ", shape[i], " in ", shape_str(shape));
      s[i] = shape[i];
      st[i] = 0;
    } else {
      int64_t xi = x.size(int64_t(i - lead));
      int64_t want = shape[i] == -1 ? xi : shape[i];
      GS_CHECK(xi == want || xi == 1, ShapeError, "expand: cannot expand ", shape_str(x.shape()), " to ",
               shape_str(shape), " (dim ", i, ": ", xi, " vs ", want, ")");
      s[i] = want;
      st[i] = (xi == 1 && want != 1) ? 0 : x.strides()[i - lead];
    }
  }
  if (s == x.shape()) return x;
  Shape xs = x.shape();
  return alias_with_grad("expand", x, s, st, x.offset(), [xs](const Tensor& g) { return V{sum_to(g, xs)}; });
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand(x, shape); }

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined(x, "unsqueeze", "x");
  int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape(), st = x.strides();
  int64_t stride = d < x.dim() ? x.strides()[size_t(d)] * x.size(d) : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return alias_with_grad("unsqueeze", x, s, st, x.offset(), [d](const Tensor& g) { return V{squeeze(g, d)}; });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined(x, "squeeze", "x");
  if (x.dim() == 0) return x;
  int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(d) != 1) return x;
  Shape s = x.shape(), st = x.strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return alias_with_grad("squeeze", x, s, st, x.offset(), [d](const Tensor& g) { return V{unsqueeze(g, d)}; });
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined(x, "flatten", "x");
  if (x.dim() == 0) return reshape(x, {1});
  int64_t a = wrap_dim(start_dim, x.dim(), "flatten"), b = wrap_dim(end_dim, x.dim(), "flatten");
  GS_CHECK(a <= b, IndexError, "flatten: start_dim ", a, " is after end_dim ", b);
  Shape s;
  for (int64_t i = 0; i < a; ++i) s.push_back(x.size(i));
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m *= x.size(i);
  s.push_back(m);
  for (int64_t i = b + 1; i < x.dim(); ++i) s.push_back(x.size(i));
  return reshape(x, s);
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  GS_CHECK(!xs.empty(), ValueError, "cat: empty list of tensors");
  const Tensor& f = xs[0];
  check_defined(f, "cat", "tensors[0]");
  GS_CHECK(f.dim() > 0, ShapeError, "cat: tensor 0 is 0-d; 0-d tensors cannot be concatenated (use stack)");
  int64_t d = wrap_dim(dim, f.dim(), "cat");
  Shape s = f.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    check_defined(t, "cat", "tensors[i]");
    GS_CHECK(t.dim() == f.dim(), ShapeError, "cat: tensor ", i, " has shape ", shape_str(t.shape()),
             " but tensor 0 has ", shape_str(f.shape()));
    GS_CHECK(t.dtype() == f.dtype(), DTypeError, "cat: tensor ", i, " is ", dtype_name(t.dtype()), " ",
             shape_str(t.shape()), " but tensor 0 is ", dtype_name(f.dtype()), " ", shape_str(f.shape()));
    GS_CHECK(t.device() == f.device(), DeviceError, "cat: tensor ", i, " is on ", t.device().str(), " ",
             shape_str(t.shape()), " but tensor 0 is on ", f.device().str(), " ", shape_str(f.shape()));
    for (int64_t j = 0; j < f.dim(); ++j)
      GS_CHECK(j == d || t.size(j) == f.size(j), ShapeError, "cat: tensor ", i, " has shape ", shape_str(t.shape()),
               " which differs from ", shape_str(f.shape()), " outside dim ", d);
    total += t.size(d);
  }
  s[size_t(d)] = total;
  Tensor out = Tensor::empty(s, {f.dtype(), f.device()});
  int64_t off = 0;
  std::vector<int64_t> lens;
  for (const Tensor& t : xs) {
    Shape ts = out.shape();
    ts[size_t(d)] = t.size(d);
    Tensor dst = make_alias(out, ts, out.strides(), off * out.strides()[size_t(d)]);
    if (t.numel() > 0) GS_DISPATCH(f.device(), copy, make_view(dst), make_view(t));
    lens.push_back(t.size(d));
    off += t.size(d);
  }
  if (any_requires_grad(xs)) {
    record("cat", out, xs, [d, lens](const Tensor& g) {
      V r;
      int64_t o = 0;
      for (int64_t l : lens) {
        r.push_back(narrow(g, d, o, l));
        o += l;
      }
      return r;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  GS_CHECK(!xs.empty(), ValueError, "stack: empty list of tensors");
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (size_t i = 0; i < xs.size(); ++i) {
    GS_CHECK(xs[i].shape() == xs[0].shape(), ShapeError, "stack: tensor ", i, " has shape ", shape_str(xs[i].shape()),
             " but tensor 0 has ", shape_str(xs[0].shape()));
    u.push_back(unsqueeze(xs[i], d));
  }
  return cat(u, d);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  check_defined(x, "split", "x");
  GS_CHECK(split_size > 0, ValueError, "split: split_size must be > 0, got ", split_size);
  int64_t d = wrap_dim(dim, x.dim(), "split");
  std::vector<Tensor> r;
  for (int64_t s = 0; s < x.size(d); s += split_size) r.push_back(narrow(x, d, s, std::min(split_size, x.size(d) - s)));
  return r;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  GS_CHECK(chunks > 0, ValueError, "chunk: chunks must be > 0, got ", chunks);
  int64_t d = wrap_dim(dim, x.dim(), "chunk");
  int64_t size = (x.size(d) + chunks - 1) / chunks;
  return split(x, std::max<int64_t>(size, 1), d);
}

static void check_index(const Tensor& index, int64_t n, const char* op, const Tensor& x, int64_t d) {
  GS_CHECK(index.dim() == 1, ShapeError, op, ": index must be 1-D, got ", shape_str(index.shape()));
  GS_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, DTypeError, op,
           ": index must be int64 or int32, got ", dtype_name(index.dtype()));
  GS_CHECK(index.device() == x.device(), DeviceError, op, ": index is on ", index.device().str(), " but input is on ",
           x.device().str());
  for (int64_t v : index.to_vector<int64_t>())
    GS_CHECK(v >= 0 && v < n, IndexError, op, ": index ", v, " out of range for dim ", d, " of size ", n,
             " (input ", shape_str(x.shape()), ")");
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined(x, "index_select", "x");
  check_defined(index, "index_select", "index");
  GS_CHECK(x.dim() > 0, ShapeError, "index_select: input is 0-d (shape []); it has no dim to index");
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  check_index(index, x.size(d), "index_select", x, d);
  Shape s = x.shape();
  int64_t n_in = s[size_t(d)];
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= s[size_t(i)];
  for (size_t i = size_t(d) + 1; i < s.size(); ++i) inner *= s[i];
  s[size_t(d)] = index.numel();
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(s, {x.dtype(), x.device()});
  if (out.numel() > 0)
    GS_DISPATCH(x.device(), index_select, make_view(out), make_view(xc), make_view(index.contiguous()), outer, n_in,
                inner);
  if (any_requires_grad({&x})) {
    Shape xs = x.shape();
    Tensor idx = index.detach();
    record("index_select", out, {x}, [xs, d, idx](const Tensor& g) {
      return V{index_add(Tensor::zeros(xs, {g.dtype(), g.device()}), d, idx, g)};
    });
  }
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_float(x, "index_add");
  check_same(x, src, "index_add");
  int64_t d = wrap_dim(dim, x.dim(), "index_add");
  check_index(index, x.size(d), "index_add", x, d);
  Shape want = x.shape();
  want[size_t(d)] = index.numel();
  GS_CHECK(src.shape() == want, ShapeError, "index_add: src has shape ", shape_str(src.shape()), ", expected ",
           shape_str(want));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  Tensor out = x.detach().clone();
  if (src.numel() > 0)
    GS_DISPATCH(x.device(), index_add, make_view(out), make_view(src.detach().contiguous()),
                make_view(index.contiguous()), outer, x.size(d), inner);
  if (any_requires_grad({&x, &src})) {
    Tensor idx = index.detach();
    record("index_add", out, {x, src}, [d, idx](const Tensor& g) { return V{g, index_select(g, d, idx)}; });
  }
  return out;
}

Tensor flip(const Tensor& x, const Shape& dims) {
  Tensor r = x;
  for (int64_t dim : dims) {
    int64_t d = wrap_dim(dim, x.dim(), "flip");
    int64_t n = x.size(d);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = n - 1 - i;
    r = index_select(r, d, Tensor::from_vector(idx, {n}, x.device()));
  }
  return r;
}

Tensor repeat(const Tensor& x, const Shape& repeats) {
  check_defined(x, "repeat", "x");
  GS_CHECK(int64_t(repeats.size()) >= x.dim(), ShapeError, "repeat: ", repeats.size(),
           " repeats for a tensor of shape ", shape_str(x.shape()));
  size_t lead = repeats.size() - size_t(x.dim());
  Shape inter, expanded, final_shape;
  for (size_t i = 0; i < repeats.size(); ++i) {
    int64_t xi = i < lead ? 1 : x.size(int64_t(i - lead));
    GS_CHECK(repeats[i] >= 0, ValueError, "repeat: negative repeat ", repeats[i]);
    inter.push_back(1);
    inter.push_back(xi);
    expanded.push_back(repeats[i]);
    expanded.push_back(xi);
    final_shape.push_back(repeats[i] * xi);
  }
  return reshape(expand(reshape(x, inter), expanded), final_shape);
}

}  // namespace gradstyle
