// Shape and indexing ops: reshape/view, permute/transpose, slice/narrow/select, cat/stack,
// expand/broadcast_to, squeeze/unsqueeze/flatten, split/chunk, index_select/index_add, flip,
// repeat. Closed-form values (incl. non-contiguous inputs), gradcheck + gradgradcheck, errors.
#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::prime_nan;
using coretest::tens;
using coretest::vals;

namespace {
Tensor ar(const Shape& s) { return Tensor::arange(shape_numel(s), {DType::f64}).reshape(s); }
std::vector<double> seq(std::initializer_list<double> v) { return v; }
}  // namespace

TEST_CASE("ops/shape: reshape, view, flatten, squeeze and unsqueeze") {
  Tensor x = ar({2, 3, 4});
  CHECK(reshape(x, {4, -1}).shape() == Shape{4, 6});
  CHECK(vals(reshape(x, {24})) == vals(x));
  GS_CHECK_THROWS_WITH(reshape(x, {}), ShapeError, "reshape", "[]");
  CHECK(reshape(ar({1}), {}).dim() == 0);
  CHECK(reshape(Tensor::scalar(3.0), {1, 1}).shape() == Shape{1, 1});
  CHECK(reshape(Tensor::zeros({0, 4}), {2, 0, 3}).shape() == Shape{2, 0, 3});
  GS_CHECK_THROWS_WITH(reshape(Tensor::zeros({0, 4}), {0, -1}), ShapeError, "reshape");  // -1 is ambiguous
  CHECK(flatten(x).shape() == Shape{24});
  CHECK(flatten(x, 1).shape() == Shape{2, 12});
  CHECK(flatten(x, 0, 1).shape() == Shape{6, 4});
  CHECK(flatten(Tensor::scalar(1.0)).shape() == Shape{1});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3, 4});
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 3, 4, 1});
  CHECK(unsqueeze(x, 2).shape() == Shape{2, 3, 1, 4});
  CHECK(vals(unsqueeze(x, 2)) == vals(x));
  CHECK(squeeze(unsqueeze(x, 1), 1).shape() == Shape{2, 3, 4});
  CHECK(squeeze(x, 0).shape() == Shape{2, 3, 4});  // not size 1: unchanged
  // of a non-contiguous tensor
  Tensor t = x.transpose(0, 2);  // [4,3,2]
  CHECK(vals(flatten(t, 1)) == vals(t.contiguous().reshape({4, 6})));
  CHECK(vals(unsqueeze(t, 1).squeeze(1)) == vals(t));
  GS_CHECK_THROWS_WITH(view(t, {24}), ShapeError, "view", "[4,3,2]");
  GS_CHECK_THROWS_WITH(reshape(x, {5, -1}), ShapeError, "reshape", "[2,3,4]", "[5,-1]");
  GS_CHECK_THROWS_WITH(reshape(x, {-2, 12}), ShapeError, "reshape", "negative");
  GS_CHECK_THROWS_WITH(unsqueeze(x, 4), IndexError, "unsqueeze", "dim 4");
  GS_CHECK_THROWS_WITH(flatten(x, 2, 1), IndexError, "flatten");
  for (auto f : std::vector<gstest::Fn>{
           [](const std::vector<Tensor>& a) { return reshape(a[0], {3, 2}); },
           [](const std::vector<Tensor>& a) { return reshape(a[0].transpose(0, 1), {6}); },
           [](const std::vector<Tensor>& a) { return view(a[0], {6, 1}); },
           [](const std::vector<Tensor>& a) { return flatten(unsqueeze(a[0], 1), 0, 1); },
           [](const std::vector<Tensor>& a) { return squeeze(unsqueeze(a[0], 0), 0) * a[0]; },
       }) {
    gstest::gradcheck(f, {Tensor::randn({2, 3}, 1, {DType::f64})});
    gstest::gradgradcheck(f, {Tensor::randn({2, 3}, 1, {DType::f64})});
  }
}

TEST_CASE("ops/shape: permute and transpose") {
  Tensor x = ar({2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  auto v = vals(p);
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) CHECK(v[size_t(k * 6 + i * 3 + j)] == 12 * i + 4 * j + k);
  CHECK(vals(permute(x, {-1, 0, 1})) == v);
  CHECK(vals(transpose(x, 0, -1)) == vals(permute(x, {2, 1, 0})));
  CHECK(vals(permute(permute(x, {2, 0, 1}), {1, 2, 0})) == vals(x));
  CHECK(permute(Tensor::scalar(1.0), {}).dim() == 0);
  GS_CHECK_THROWS_WITH(permute(x, {0, 1}), ShapeError, "permute", "[2,3,4]");
  GS_CHECK_THROWS_WITH(permute(x, {0, 1, 1}), IndexError, "permute", "repeated");
  GS_CHECK_THROWS_WITH(permute(x, {0, 1, 3}), IndexError, "permute", "dim 3");
  GS_CHECK_THROWS_WITH(transpose(x, 0, 5), IndexError, "transpose", "dim 5");
  gstest::Fn f = [](const std::vector<Tensor>& a) { return permute(a[0], {2, 0, 1}) * permute(a[0], {2, 0, 1}); };
  gstest::gradcheck(f, {Tensor::randn({2, 3, 2}, 2, {DType::f64})});
  gstest::gradgradcheck(f, {Tensor::randn({2, 3, 2}, 2, {DType::f64})});
  gstest::gradgradcheck([](const std::vector<Tensor>& a) { return transpose(a[0], 0, 1) * a[1]; },
                        {Tensor::randn({2, 3}, 3, {DType::f64}), Tensor::randn({3, 2}, 4, {DType::f64})});
}

TEST_CASE("ops/shape: slice, narrow and select") {
  Tensor x = ar({3, 5});
  CHECK(vals(slice(x, 1, 1, 4)) == seq({1, 2, 3, 6, 7, 8, 11, 12, 13}));
  CHECK(vals(slice(x, 1, 0, 5, 2)) == seq({0, 2, 4, 5, 7, 9, 10, 12, 14}));
  CHECK(vals(slice(x, 1, -2, 5)) == seq({3, 4, 8, 9, 13, 14}));     // negative start
  CHECK(vals(slice(x, -1, 1, -1, 2)) == seq({1, 3, 6, 8, 11, 13}));  // negative end and dim
  CHECK(vals(slice(x, 0, 2, 100)) == seq({10, 11, 12, 13, 14}));     // end clamped
  CHECK(slice(x, 0, 3, 10).shape() == Shape{0, 5});                  // empty
  CHECK(slice(x, 0, 2, 1).shape() == Shape{0, 5});                   // end < start -> empty
  CHECK(vals(narrow(x, 0, 1, 2)) == seq({5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  CHECK(narrow(x, 1, 5, 0).shape() == Shape{3, 0});
  CHECK(vals(select(x, 1, -1)) == seq({4, 9, 14}));
  CHECK(select(x, 0, 2).shape() == Shape{5});
  // of a transposed tensor
  Tensor t = x.transpose(0, 1);  // [5,3]
  CHECK(vals(slice(t, 0, 1, 5, 3)) == seq({1, 6, 11, 4, 9, 14}));
  CHECK(vals(select(t, 1, 0)) == seq({0, 1, 2, 3, 4}));
  GS_CHECK_THROWS_WITH(narrow(x, 1, 3, 3), IndexError, "narrow", "[3, 6)", "size 5", "[3,5]");
  GS_CHECK_THROWS_WITH(narrow(x, 1, -1, 2), IndexError, "narrow");
  GS_CHECK_THROWS_WITH(narrow(x, 2, 0, 1), IndexError, "narrow", "dim 2");
  GS_CHECK_THROWS_WITH(slice(x, 1, 0, 5, 0), ValueError, "slice", "step");
  GS_CHECK_THROWS_WITH(slice(Tensor::scalar(1.0), 0, 0, 1), IndexError, "slice", "0-d");
  GS_CHECK_THROWS_WITH(select(x, 0, 3), IndexError, "select", "index 3", "size 3");
  for (auto f : std::vector<gstest::Fn>{
           [](const std::vector<Tensor>& a) { return slice(a[0], 1, 1, 5, 2); },
           [](const std::vector<Tensor>& a) { return narrow(a[0], 0, 1, 2) * narrow(a[0], 0, 0, 2); },
           [](const std::vector<Tensor>& a) { return select(a[0].transpose(0, 1), 0, 3) * select(a[0], 1, 1); },
       }) {
    gstest::gradcheck(f, {Tensor::randn({3, 5}, 5, {DType::f64})});
    gstest::gradgradcheck(f, {Tensor::randn({3, 5}, 5, {DType::f64})});
  }
}

TEST_CASE("ops/shape: cat and stack") {
  Tensor a = ar({2, 2}), b = ar({2, 3}) + 10.0;
  prime_nan(10);
  Tensor c = cat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 5});
  CHECK(vals(c) == seq({0, 1, 10, 11, 12, 2, 3, 13, 14, 15}));
  CHECK(vals(cat({a, a.transpose(0, 1)}, 0)) == seq({0, 1, 2, 3, 0, 2, 1, 3}));  // strided input
  CHECK(vals(cat({a, Tensor::zeros({0, 2}, {DType::f64}), a}, -2)) == seq({0, 1, 2, 3, 0, 1, 2, 3}));
  CHECK(vals(cat({a}, 0)) == vals(a));
  Tensor s = stack({a, a * 2.0, a * 3.0}, 1);
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(vals(s) == seq({0, 1, 0, 2, 0, 3, 2, 3, 4, 6, 6, 9}));
  CHECK(stack({a, a}, -1).shape() == Shape{2, 2, 2});
  CHECK(vals(stack({Tensor::scalar(1.0, {DType::f64}), Tensor::scalar(2.0, {DType::f64})}, 0)) == seq({1, 2}));
  GS_CHECK_THROWS_WITH(cat({a, b}, 0), ShapeError, "cat", "[2,3]", "[2,2]");
  GS_CHECK_THROWS_WITH(cat({a, ar({2})}, 0), ShapeError, "cat", "[2]");
  GS_CHECK_THROWS_WITH(cat({a, a.to(DType::f32)}, 0), DTypeError, "cat", "float32", "float64");
  GS_CHECK_THROWS_WITH(cat({a, a}, 2), IndexError, "cat", "dim 2");
  GS_CHECK_THROWS_WITH(cat({}, 0), ValueError, "cat", "empty");
  GS_CHECK_THROWS_WITH(cat({Tensor::scalar(1.0), Tensor::scalar(2.0)}, 0), ShapeError, "cat", "0-d");
  GS_CHECK_THROWS_WITH(stack({a, b}, 0), ShapeError, "stack", "[2,3]", "[2,2]");
  GS_CHECK_THROWS_WITH(stack({a, a}, 3), IndexError, "stack", "dim 3");
  gstest::Fn f = [](const std::vector<Tensor>& x) { return cat({x[0], x[1] * x[0].sum(), x[0]}, 1); };
  gstest::gradcheck(f, {Tensor::randn({2, 2}, 6, {DType::f64}), Tensor::randn({2, 3}, 7, {DType::f64})});
  gstest::gradgradcheck(f, {Tensor::randn({2, 2}, 6, {DType::f64}), Tensor::randn({2, 3}, 7, {DType::f64})});
  gstest::Fn g = [](const std::vector<Tensor>& x) { return stack({x[0], x[1] * x[1]}, 0); };
  gstest::gradcheck(g, {Tensor::randn({3}, 8, {DType::f64}), Tensor::randn({3}, 9, {DType::f64})});
  gstest::gradgradcheck(g, {Tensor::randn({3}, 8, {DType::f64}), Tensor::randn({3}, 9, {DType::f64})});
}

TEST_CASE("ops/shape: expand, broadcast_to and repeat") {
  Tensor x = tens({1, 2, 3}, {3, 1});
  Tensor e = expand(x, {2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.storage() == x.storage());
  CHECK(vals(e) == seq({1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
  CHECK(expand(x, {-1, 2}).shape() == Shape{3, 2});
  CHECK(expand(x, {3, 1}).same(x));
  CHECK(vals(broadcast_to(Tensor::scalar(5.0, {DType::f64}), {2, 2})) == seq({5, 5, 5, 5}));
  CHECK(expand(x, {0, 3, 1}).numel() == 0);
  CHECK(vals(repeat(tens({1, 2}, {2}), {2, 2})) == seq({1, 2, 1, 2, 1, 2, 1, 2}));
  CHECK(vals(repeat(tens({1, 2, 3, 4}, {2, 2}), {1, 2})) == seq({1, 2, 1, 2, 3, 4, 3, 4}));
  GS_CHECK_THROWS_WITH(expand(x, {3, 2, 2}), ShapeError, "expand", "[3,1]", "[3,2,2]");
  GS_CHECK_THROWS_WITH(expand(x, {2}), ShapeError, "expand", "fewer dims");
  GS_CHECK_THROWS_WITH(expand(x, {-1, 3, 1}), ShapeError, "expand", "-1");
  GS_CHECK_THROWS_WITH(repeat(x, {2}), ShapeError, "repeat");
  for (auto f : std::vector<gstest::Fn>{
           [](const std::vector<Tensor>& a) { return expand(a[0], {2, 3, 4}) * expand(a[0], {2, 3, 4}); },
           [](const std::vector<Tensor>& a) { return broadcast_to(a[0], {3, 5}); },
           [](const std::vector<Tensor>& a) { return repeat(a[0], {2, 1, 3}) * repeat(a[0], {2, 1, 3}); },
       }) {
    gstest::gradcheck(f, {Tensor::randn({3, 1}, 10, {DType::f64})});
    gstest::gradgradcheck(f, {Tensor::randn({3, 1}, 10, {DType::f64})});
  }
}

TEST_CASE("ops/shape: index_select, index_add, flip, split and chunk") {
  Tensor x = ar({3, 4});
  Tensor idx = Tensor::from_vector<int64_t>({2, 0, 2}, {3});
  prime_nan(9);
  CHECK(vals(index_select(x, 0, idx)) == seq({8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11}));
  CHECK(vals(index_select(x, 1, idx)) == seq({2, 0, 2, 6, 4, 6, 10, 8, 10}));
  CHECK(vals(index_select(x, -1, Tensor::from_vector<int32_t>({3}, {1}))) == seq({3, 7, 11}));
  CHECK(vals(index_select(x.transpose(0, 1), 0, idx)) == seq({2, 6, 10, 0, 4, 8, 2, 6, 10}));
  CHECK(index_select(x, 0, Tensor::zeros({0}, {DType::i64})).shape() == Shape{0, 4});
  CHECK(vals(index_select(Tensor::from_vector<float>({1, 2}, {2}), 0, idx.narrow(0, 1, 1))) == seq({1}));
  Tensor ia = index_add(Tensor::zeros({3, 2}, {DType::f64}), 0, idx, tens({1, 2, 3, 4, 5, 6}, {3, 2}));
  CHECK(vals(ia) == seq({3, 4, 0, 0, 6, 8}));  // row 2 receives rows 0 and 2 of src
  CHECK(vals(flip(x, {1})) == seq({3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}));
  CHECK(vals(flip(x, {0, 1})) == seq({11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  auto sp = split(x, 3, 1);
  REQUIRE(sp.size() == 2);
  CHECK(vals(sp[0]) == seq({0, 1, 2, 4, 5, 6, 8, 9, 10}));
  CHECK(vals(sp[1]) == seq({3, 7, 11}));
  auto ch = chunk(x, 2, 0);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].shape() == Shape{2, 4});
  CHECK(ch[1].shape() == Shape{1, 4});
  GS_CHECK_THROWS_WITH(index_select(x, 0, Tensor::from_vector<int64_t>({3}, {1})), IndexError, "index_select",
                       "index 3", "size 3", "[3,4]");
  GS_CHECK_THROWS_WITH(index_select(x, 0, Tensor::from_vector<int64_t>({-1}, {1})), IndexError, "index -1");
  GS_CHECK_THROWS_WITH(index_select(x, 0, tens({0}, {1})), DTypeError, "index_select", "float64");
  GS_CHECK_THROWS_WITH(index_select(x, 0, Tensor::zeros({1, 1}, {DType::i64})), ShapeError, "index_select", "1-D");
  GS_CHECK_THROWS_WITH(index_select(x, 2, idx), IndexError, "index_select", "dim 2");
  GS_CHECK_THROWS_WITH(index_select(Tensor::scalar(1.0), 0, idx), ShapeError, "index_select", "0-d");
  GS_CHECK_THROWS_WITH(index_add(x, 0, idx, tens({1}, {1})), ShapeError, "index_add", "[1]", "[3,4]");
  GS_CHECK_THROWS_WITH(split(x, 0, 1), ValueError, "split");
  GS_CHECK_THROWS_WITH(chunk(x, 0, 1), ValueError, "chunk");
  GS_CHECK_THROWS_WITH(split(Tensor::scalar(1.0), 1, 0), IndexError, "0-d");
  gstest::Fn f = [idx](const std::vector<Tensor>& a) { return index_select(a[0], 1, idx) * index_select(a[0], 1, idx); };
  gstest::gradcheck(f, {Tensor::randn({2, 3}, 11, {DType::f64})});
  gstest::gradgradcheck(f, {Tensor::randn({2, 3}, 11, {DType::f64})});
  gstest::Fn g = [idx](const std::vector<Tensor>& a) { return index_add(a[0], 0, idx, a[1] * a[1]); };
  gstest::gradcheck(g, {Tensor::randn({3, 2}, 12, {DType::f64}), Tensor::randn({3, 2}, 13, {DType::f64})});
  gstest::gradgradcheck(g, {Tensor::randn({3, 2}, 12, {DType::f64}), Tensor::randn({3, 2}, 13, {DType::f64})});
  gstest::Fn h = [](const std::vector<Tensor>& a) {
    auto parts = split(flip(a[0], {0}), 2, 1);
    return parts[0].sum({1}) * parts[1].sum({1});
  };
  gstest::gradcheck(h, {Tensor::randn({3, 3}, 14, {DType::f64})});
  gstest::gradgradcheck(h, {Tensor::randn({3, 3}, 14, {DType::f64})});
}

TEST_CASE("ops/shape: reshape of random strided layouts equals reshape of the contiguous copy") {
  // Random permuted / stepped tensors reshaped by merging a run of dims or splitting one dim:
  // reshape must give the values of contiguous().reshape(), as a view when view() accepts it.
  uint64_t state = 0x2545F4914F6CDD1Dull;
  auto below = [&](int64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return int64_t(state % uint64_t(n));
  };
  int views = 0, copies = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t nd = 1 + below(4);
    Shape s(static_cast<size_t>(nd));
    for (auto& d : s) d = 1 + below(4);
    Tensor base = Tensor::arange(shape_numel(s) * 2, {DType::f64}).reshape({shape_numel(s), 2});
    Tensor x = base.narrow(1, 1, 1).reshape(s);  // every other element: a stepped layout
    if (below(2)) {
      Shape perm(static_cast<size_t>(nd));
      for (int64_t i = 0; i < nd; ++i) perm[size_t(i)] = i;
      for (int64_t i = nd - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(below(i + 1))]);
      x = x.permute(perm);
    }
    Shape ns;
    const int64_t a = below(nd), b = a + below(nd - a);  // merge dims a..b
    for (int64_t i = 0; i < a; ++i) ns.push_back(x.size(i));
    int64_t m = 1;
    for (int64_t i = a; i <= b; ++i) m *= x.size(i);
    if (m % 2 == 0 && below(2)) {  // and sometimes split the merged dim again
      ns.push_back(2);
      ns.push_back(m / 2);
    } else {
      ns.push_back(m);
    }
    for (int64_t i = b + 1; i < nd; ++i) ns.push_back(x.size(i));
    INFO("trial " << trial << " " << shape_str(x.shape()) << " strides " << shape_str(x.strides()) << " -> "
                  << shape_str(ns));
    Tensor r = reshape(x, ns);
    CHECK(r.shape() == ns);
    CHECK(vals(r) == vals(x.contiguous().reshape(ns)));
    bool viewable = true;
    try {
      Tensor v = view(x, ns);
      CHECK(v.storage() == x.storage());
      CHECK(vals(v) == vals(r));
    } catch (const ShapeError&) {
      viewable = false;
    }
    CHECK((r.storage() == x.storage()) == viewable);
    (viewable ? views : copies) += 1;
  }
  CHECK(views > 50);
  CHECK(copies > 10);
}
