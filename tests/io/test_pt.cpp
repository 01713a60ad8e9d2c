// PyTorch .pt reader: every fixture value, container details, refused and malformed files.
#include <cstring>

#include "gradstyle/io/pickle.hpp"
#include "gradstyle/io/torch_pt.hpp"
#include "gradstyle/io/zip.hpp"
#include "io_test_util.hpp"

using namespace iotest;

namespace {

// Emits pickle opcodes for hand-made test pickles.
struct Pk {
  std::vector<uint8_t> b;
  Pk& op(uint8_t o) { b.push_back(o); return *this; }
  Pk& proto() { return op(0x80).op(2); }
  Pk& global(const std::string& m, const std::string& n) {
    op('c');
    b.insert(b.end(), m.begin(), m.end());
    op('\n');
    b.insert(b.end(), n.begin(), n.end());
    return op('\n');
  }
  Pk& str(const std::string& s) {
    op('X');
    for (int k = 0; k < 4; ++k) op(uint8_t(s.size() >> (8 * k)));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Pk& k1(uint8_t v) { return op('K').op(v); }
  Pk& mark() { return op('('); }
  Pk& tuple() { return op('t'); }
  Pk& stop() { return op('.'); }
  // ('storage', torch.<type>, key, 'cpu', numel) BINPERSID
  Pk& storage(const std::string& type, const std::string& key, uint8_t numel) {
    return mark().str("storage").global("torch", type).str(key).str("cpu").k1(numel).tuple().op('Q');
  }
  // _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pk& tensor(const std::string& key, uint8_t numel, std::vector<uint8_t> size, std::vector<uint8_t> stride,
             uint8_t offset = 0, const std::string& type = "FloatStorage") {
    global("torch._utils", "_rebuild_tensor_v2").mark().storage(type, key, numel).k1(offset);
    mark();
    for (auto s : size) k1(s);
    tuple().mark();
    for (auto s : stride) k1(s);
    tuple().op(0x89).global("collections", "OrderedDict").op(')').op('R').tuple().op('R');
    return *this;
  }
};

std::vector<uint8_t> make_pt_zip(const std::vector<uint8_t>& pkl,
                                 const std::vector<std::pair<std::string, std::vector<uint8_t>>>& records = {}) {
  ZipWriter zw(64);
  zw.add("crafted/data.pkl", ByteSpan(pkl.data(), pkl.size()));
  for (const auto& [k, v] : records) zw.add("crafted/data/" + k, ByteSpan(v.data(), v.size()));
  const char ver[] = "3\n";
  zw.add("crafted/version", ByteSpan(reinterpret_cast<const uint8_t*>(ver), 2));
  return zw.finish();
}

std::vector<uint8_t> floats_bytes(std::vector<float> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

PtCheckpoint parse_crafted(const std::vector<uint8_t>& pkl,
                           const std::vector<std::pair<std::string, std::vector<uint8_t>>>& records = {},
                           const PtLoadOptions& o = {}) {
  auto z = make_pt_zip(pkl, records);
  return parse_pt(ByteSpan(z.data(), z.size()), "crafted.pt", o);
}

void expect_crafted_error(const Pk& p, const std::vector<std::string>& keywords,
                          const std::vector<std::pair<std::string, std::vector<uint8_t>>>& records = {}) {
  expect_error<FormatError>([&] { parse_crafted(p.b, records); }, "crafted.pt", keywords);
}

}  // namespace

TEST_CASE("io: pt fixtures load with every value equal to torch's") {
  for (const auto& [file, tensors] : expected()["pt"].items()) {
    INFO("fixture ", file);
    PtCheckpoint ck = load_pt(fixture(file));
    auto flat = ck.flat_tensors();
    std::vector<std::string> names, want;
    for (const auto& [n, t] : flat) names.push_back(n);
    for (const auto& [n, e] : tensors.items()) want.push_back(n);
    CHECK(names == want);
    for (const auto& [n, t] : flat)
      if (tensors.contains(n)) check_tensor(*t, tensors[n], file + ":" + n);
  }
}

TEST_CASE("io: pt zip root folder, version and records") {
  PtCheckpoint a = load_pt(fixture("state_dict.pt"));
  CHECK(a.format == PtFormat::Zip);
  CHECK(a.root == "state_dict");  // torch 1.13 saving to a path: the file stem
  CHECK(a.version == 3);
  CHECK(std::find(a.records.begin(), a.records.end(), "state_dict/data.pkl") != a.records.end());
  PtCheckpoint b = load_pt(fixture("e4e_like.pt"), {.verify_crc = true});
  CHECK(b.root == "archive");  // saving to a buffer, like e4e's shipped files
  PtCheckpoint c = load_pt(fixture("legacy.pt"));
  CHECK(c.format == PtFormat::Legacy);
  CHECK(c.version == 1001);
}

TEST_CASE("io: pt state_dict is an ordered dict with _metadata kept as data") {
  PtCheckpoint ck = load_pt(fixture("state_dict.pt"));
  const PyValue& root = ck.root_value();
  REQUIRE(root.is_dict());
  CHECK(root.ordered);
  REQUIRE(root.attrs);
  const PyValue* meta = root.attrs->get("_metadata");
  REQUIRE(meta);
  const PyValue* v = meta->get("0");
  REQUIRE(v);
  REQUIRE(v->get("version"));
  CHECK(v->get("version")->i == 1);
  const PyValue* nbt = root.get("1.num_batches_tracked");
  REQUIRE(nbt);
  CHECK(nbt->as_tensor().shape.empty());
  CHECK(nbt->as_tensor().get_int(0) == 7);
  CHECK(std::find(ck.globals.begin(), ck.globals.end(), "collections.OrderedDict") != ck.globals.end());
}

TEST_CASE("io: pt shared storages, offsets, views and location tags") {
  PtCheckpoint ck = load_pt(fixture("stylegan2_like.pt"));
  const PyValue* g_ema = ck.root_value().get("g_ema");
  const PyValue* g = ck.root_value().get("g");
  REQUIRE((g_ema && g));
  const PyValue* w = g_ema->get("convs.0.conv.weight");
  const PyValue* k = g_ema->get("convs.0.conv.blur.kernel");
  REQUIRE((w && k));
  CHECK(w->tensor->storage->key == k->tensor->storage->key);  // one storage, loaded once
  CHECK(k->tensor->storage_offset == 8);
  CHECK(g->get("convs.0.conv.weight")->tensor == w->tensor);  // the memo shares the tensor
  CHECK(ck.storages.size() == 12);  // 9 in g_ema (two tensors share one), latent_avg, 2 in d; g shares g_ema

  PtCheckpoint gs = load_pt(fixture("ganspace_like.pt"));
  const auto& comp = *gs.root_value().get("comp")->tensor;
  CHECK(comp.stride == std::vector<int64_t>{1, 7});
  CHECK(comp.storage_offset == 15);

  PtCheckpoint dt = load_pt(fixture("dtypes.pt"));
  const PyValue* cuda = dt.root_value().get("on_cuda");
  REQUIRE(cuda);
  CHECK(cuda->tensor->storage->location == "cuda:0");
  CHECK(dt.root_value().get("f32")->tensor->storage->location == "cpu");
  const PyValue* param = dt.root_value().get("param");
  REQUIRE(param);
  CHECK(param->tensor->is_parameter);
  CHECK(param->tensor->requires_grad);

  PtCheckpoint lg = load_pt(fixture("legacy.pt"));
  CHECK(lg.root_value().get("lin0.model.1.weight")->tensor->storage->location == "cuda:0");
  CHECK(lg.root_value().get("shared_row")->tensor->storage->key == lg.root_value().get("shared_all")->tensor->storage->key);
}

TEST_CASE("io: pt e4e-style opts dict keeps every plain value") {
  PtCheckpoint ck = load_pt(fixture("e4e_like.pt"));
  const PyValue* opts = ck.root_value().get("opts");
  REQUIRE(opts);
  const auto& want = expected()["e4e_opts"];
  CHECK(opts->entries.size() == want.size());
  for (const auto& [key, val] : want.items()) {
    INFO("opts key ", key);
    const PyValue* v = opts->get(key);
    REQUIRE(v);
    if (val.is_null()) CHECK(v->kind == PyKind::None);
    else if (val.is_boolean()) CHECK((v->kind == PyKind::Bool && v->b == val.get<bool>()));
    else if (val.is_number_integer()) CHECK((v->kind == PyKind::Int && v->i == val.get<int64_t>()));
    else if (val.is_number_float()) CHECK((v->kind == PyKind::Float && v->f == val.get<double>()));
    else if (val.is_string()) CHECK((v->kind == PyKind::String && v->s == val.get<std::string>()));
    else if (val.is_array()) {
      REQUIRE(v->kind == PyKind::List);
      REQUIRE(v->items.size() == val.size());
      for (size_t i = 0; i < val.size(); ++i) CHECK(v->items[i]->i == val[i].get<int64_t>());
    }
  }
  CHECK(ck.root_value().get("latent_avg")->as_tensor().shape == std::vector<int64_t>{18, 8});
}

TEST_CASE("io: pt refuses non-whitelisted globals by name") {
  expect_error<FormatError>([] { load_pt(fixture("evil_system.pt")); }, "evil_system.pt", {"'posix.system'", "offset 13"});
  expect_error<FormatError>([] { load_pt(fixture("evil_eval.pt")); }, "evil_eval.pt", {"'__builtin__.eval'"});
  expect_error<FormatError>([] { load_pt(fixture("evil_legacy.pt")); }, "evil_legacy.pt", {"'posix.system'"});
  expect_error<FormatError>([] { load_pt(fixture("bare.pkl")); }, "bare.pkl", {"bare Python pickle"});
  expect_crafted_error(Pk().proto().global("subprocess", "Popen").stop(), {"'subprocess.Popen'"});
  expect_crafted_error(Pk().proto().global("torch_utils.persistence", "_reconstruct_persistent_obj").stop(), {"NVIDIA"});
  expect_crafted_error(Pk().proto().global("torch._utils", "_rebuild_tensor_v3").stop(), {"not supported yet"});
  expect_crafted_error(Pk().proto().global("torch", "FloatStorage").op(')').op('R').stop(), {"cannot be called"});
  expect_crafted_error(Pk().proto().global("os", "sys\ntem").stop(), {"'os.sys'"});
  expect_crafted_error(Pk().proto().op('c').op('o').op('s').op(' ').stop(), {"invalid character"});
}

TEST_CASE("io: pt hand-made pickle builds a tensor; VM limits and malformed pickles are errors") {
  {
    Pk p;
    p.proto().tensor("0", 6, {2, 3}, {1, 2}).stop();  // a transposed view of 6 floats
    PtCheckpoint ck = parse_crafted(p.b, {{"0", floats_bytes({0, 1, 2, 3, 4, 5})}});
    const RawTensor& t = ck.root_value().as_tensor();
    CHECK(t.shape == std::vector<int64_t>{2, 3});
    std::vector<float> want{0, 2, 4, 1, 3, 5};
    CHECK(t.to_float32() == want);
  }
  auto deep_lists = [](int n) {
    Pk p;
    p.proto();
    for (int i = 0; i < n; ++i) p.op(']');
    for (int i = 1; i < n; ++i) p.op('a');
    return p.stop();
  };
  CHECK_NOTHROW(parse_crafted(deep_lists(900).b));
  expect_crafted_error(deep_lists(1500), {"nested deeper than 1000"});
  Pk marks;
  marks.proto();
  for (int i = 0; i < 1500; ++i) marks.mark();
  expect_crafted_error(marks, {"MARKs nested deeper"});
  // Exponential sharing: t = (t, t) thirty times.
  Pk dag;
  dag.proto().op(')');
  for (int i = 0; i < 30; ++i) dag.op('q').op(0).op('h').op(0).op(0x86);
  expect_crafted_error(dag.stop(), {"object tree larger"});
  expect_crafted_error(Pk().proto().op(']').op('q').op(0).op('h').op(0).op('a').stop(), {"cyclic"});
  expect_crafted_error(Pk().proto().op('}').str("a").k1(1).op('s').str("a").k1(2).op('s').stop(), {"duplicate dict key"});
  expect_crafted_error(Pk().proto().op(0x8a).op(9), {"LONG1 of 9 bytes"});
  expect_crafted_error(Pk().proto().op('h').op(3).stop(), {"memo index 3"});
  expect_crafted_error(Pk().proto().op(0xFF).stop(), {"unknown opcode 0xff"});
  expect_crafted_error(Pk().proto().op('i').stop(), {"INST"});
  expect_crafted_error(Pk().proto().op(0x93).stop(), {"STACK_GLOBAL"});
  expect_crafted_error(Pk().proto().op('a').stop(), {"APPEND on an empty stack"});
  expect_crafted_error(Pk().proto().op(']'), {"no STOP"});
  expect_crafted_error(Pk().op(0x80).op(4).op(0x95).stop(), {"protocol 4"});
  expect_crafted_error(Pk().proto().op('X').op(0xFF).op(0xFF).op(0xFF).op(0x7F).stop(), {"truncated"});
  expect_crafted_error(Pk().proto().k1(1).k1(2).stop(), {"left on the stack"});
  expect_crafted_error(Pk().proto().op(']').op('}').op('R').stop(), {"REDUCE on a list"});
  // Tensor validation.
  expect_crafted_error(Pk().proto().tensor("0", 6, {7}, {1}).stop(), {"reaches element 6", "6 elements"},
                       {{"0", floats_bytes({0, 1, 2, 3, 4, 5})}});
  expect_crafted_error(Pk().proto().tensor("0", 6, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1}).stop(),
                       {"rank 9"}, {{"0", floats_bytes({0, 1, 2, 3, 4, 5})}});
  expect_crafted_error(Pk().proto().tensor("0", 6, {2, 3}, {3, 1}).stop(), {"has 20 bytes", "6 float32"},
                       {{"0", floats_bytes({0, 1, 2, 3, 4})}});
  expect_crafted_error(Pk().proto().tensor("0", 6, {2, 3}, {3, 1}).stop(), {"no record crafted/data/0"});
  // Stride-0 expansion far larger than the storage: refused before allocating.
  Pk big;
  big.proto().tensor("0", 1, {255, 255, 255, 255}, {0, 0, 0, 0}).stop();
  expect_crafted_error(big, {"refusing to allocate"}, {{"0", floats_bytes({1})}});
}

TEST_CASE("io: pt non-checkpoint inputs name what the file is") {
  TempDir d;
  auto put = [&](const std::string& n, const std::string& s) {
    write_bytes(d.file(n), std::vector<uint8_t>(s.begin(), s.end()));
    return d.file(n);
  };
  std::string empty = put("empty.pt", "");
  expect_error<FormatError>([&] { load_pt(empty); }, "empty.pt", {"empty (0 bytes)"});
  std::string html = put("page.pt", "<!DOCTYPE html><html>quota exceeded</html>");
  expect_error<FormatError>([&] { load_pt(html); }, "page.pt", {"HTML page"});
  std::string lfs = put("lfs.pt", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n");
  expect_error<FormatError>([&] { load_pt(lfs); }, "lfs.pt", {"Git LFS pointer", "git lfs pull"});
  std::string tar(600, '\0');
  tar.replace(257, 5, "ustar");
  std::string tarp = put("old.pt", tar);
  expect_error<FormatError>([&] { load_pt(tarp); }, "old.pt", {"tar checkpoint", "re-save"});
  std::string txt = put("hello.pt", "hello world, not weights");
  expect_error<FormatError>([&] { load_pt(txt); }, "hello.pt", {"not a PyTorch, safetensors or NumPy file", "hello wo"});
  expect_error<FormatError>([&] { load_pt(fixture("latents.npz")); }, "latents.npz", {".npz archive"});
  expect_error<FormatError>([&] { load_pt(fixture("fixture.safetensors")); }, "fixture.safetensors", {"safetensors file"});
  expect_error<IOError>([&] { load_pt(d.path); }, d.path, {"is a directory"});
  expect_error<IOError>([&] { load_pt(d.file("missing.pt")); }, "missing.pt", {"cannot open"});
  // A zip that is not a checkpoint.
  ZipWriter zw;
  std::vector<uint8_t> x{1, 2, 3};
  zw.add("notes/readme.txt", ByteSpan(x.data(), x.size()));
  write_bytes(d.file("other.zip"), zw.finish());
  expect_error<FormatError>([&] { load_pt(d.file("other.zip")); }, "other.zip", {"not a checkpoint", "data.pkl"});
}

TEST_CASE("io: pt zip container damage is detected") {
  std::vector<uint8_t> good = read_bytes(fixture("half.pt"));
  const std::string name = "damaged.pt";
  auto parse = [&](const std::vector<uint8_t>& b) { parse_pt(ByteSpan(b.data(), b.size()), name); };
  CHECK_NOTHROW(parse(good));
  // Find the first central directory record.
  size_t cd = 0;
  for (size_t i = 0; i + 4 <= good.size(); ++i)
    if (std::memcmp(&good[i], "PK\x01\x02", 4) == 0) { cd = i; break; }
  REQUIRE(cd > 0);
  {
    auto b = good;  // local header offset far outside the file (zip64 value in the extra field or not)
    uint32_t off = 0x7FFFFFF0;
    std::memcpy(&b[cd + 42], &off, 4);
    expect_error<FormatError>([&] { parse(b); }, name, {"outside the file"});
  }
  {
    auto b = good;  // second entry points at the first entry's header: overlap / name mismatch
    size_t cd2 = 0;
    for (size_t i = cd + 4; i + 4 <= b.size(); ++i)
      if (std::memcmp(&b[i], "PK\x01\x02", 4) == 0) { cd2 = i; break; }
    REQUIRE(cd2 > 0);
    std::memcpy(&b[cd2 + 42], &b[cd + 42], 4);
    expect_error<FormatError>([&] { parse(b); }, name, {"local header name differs"});
  }
  {
    auto b = good;  // compression method 8 on a checkpoint record
    b[cd + 10] = 8;
    expect_error<FormatError>([&] { parse(b); }, name, {"compressed"});
  }
  {
    auto b = good;  // no end-of-central-directory record
    b.resize(b.size() - 10);
    expect_error<FormatError>([&] { parse(b); }, name, {"truncated or not a zip", "no end-of-central-directory"});
  }
  {
    auto b = good;  // central directory offset beyond the end
    for (size_t i = b.size() - 22; i-- > 0;)
      if (std::memcmp(&b[i], "PK\x06\x06", 4) == 0) {
        uint64_t off = uint64_t(1) << 62;
        std::memcpy(&b[i + 48], &off, 8);
        break;
      }
    expect_error<FormatError>([&] { parse(b); }, name, {"central directory"});
  }
  {
    auto b = good;  // wrong magic
    b[0] = 'Q';
    expect_error<FormatError>([&] { parse(b); }, name, {"not a PyTorch"});
  }
}

TEST_CASE("io: pt truncated and bit-flipped files never crash") {
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  int rejected = 0, total = 0;
  for (const auto& [file, t] : expected()["pt"].items()) {
    std::vector<uint8_t> good = read_bytes(fixture(file));
    for (int k = 1; k <= 16; ++k) {
      std::vector<uint8_t> b(good.begin(), good.begin() + ptrdiff_t(good.size() * size_t(k) / 17));
      expect_error<FormatError>([&] { parse_pt(ByteSpan(b.data(), b.size()), "cut.pt"); }, "cut.pt", {"truncated"});
    }
    for (int k = 0; k < 150; ++k) {
      auto b = good;
      for (int f = 0; f < 3; ++f) b[next() % b.size()] ^= uint8_t(1u << (next() % 8));
      ++total;
      try {
        parse_pt(ByteSpan(b.data(), b.size()), "flip.pt");
      } catch (const FormatError& e) {
        ++rejected;
        CHECK(std::string(e.what()).find("flip.pt") != std::string::npos);
      }
    }
  }
  MESSAGE("bit flips: ", rejected, " of ", total, " variants rejected, the rest loaded (flips in data bytes)");
  CHECK(rejected > 0);
}

TEST_CASE("io: pickle rejects data after STOP and legacy trailing bytes") {
  std::vector<uint8_t> b = read_bytes(fixture("legacy.pt"));
  b.push_back(0);
  expect_error<FormatError>([&] { parse_pt(ByteSpan(b.data(), b.size()), "legacy+1.pt"); }, "legacy+1.pt",
                            {"unexpected bytes after the last storage"});
  std::vector<uint8_t> c = read_bytes(fixture("legacy.pt"));
  c.resize(c.size() - 3);
  expect_error<FormatError>([&] { parse_pt(ByteSpan(c.data(), c.size()), "legacy-3.pt"); }, "legacy-3.pt", {"truncated"});
}

TEST_CASE("io: pickle accepts what Python's pickle accepts in real checkpoints") {
  auto od = [](Pk& p) -> Pk& { return p.global("collections", "OrderedDict"); };
  auto entries = [](const PyValue& d) {
    std::vector<std::pair<std::string, int64_t>> r;
    for (const auto& [k, v] : d.entries) r.emplace_back(k->s, v->i);
    return r;
  };
  using Entries = std::vector<std::pair<std::string, int64_t>>;
  {  // OrderedDict([['a', 1], ['b', 2]]): Python 2 legacy files (LPIPS vgg.pth) pass lists
    Pk p;
    p.proto();
    od(p).op(']').mark().op(']').mark().str("a").k1(1).op('e').op(']').mark().str("b").k1(2).op('e').op('e');
    p.op(0x85).op('R').stop();
    PtCheckpoint ck = parse_crafted(p.b);
    REQUIRE(ck.root_value().is_dict());
    CHECK(ck.root_value().ordered);
    CHECK(entries(ck.root_value()) == Entries{{"a", 1}, {"b", 2}});
  }
  {  // OrderedDict((('a', 1), ('b', 2), ('a', 3))): a repeated key keeps its place, takes the last value
    Pk p;
    p.proto();
    od(p).mark().mark().str("a").k1(1).tuple().mark().str("b").k1(2).tuple().mark().str("a").k1(3).tuple().tuple();
    p.op(0x85).op('R').stop();
    CHECK(entries(parse_crafted(p.b).root_value()) == Entries{{"a", 3}, {"b", 2}});
  }
  {  // OrderedDict({'x': 5})
    Pk p;
    p.proto();
    od(p).op('}').mark().str("x").k1(5).op('u').op(0x85).op('R').stop();
    CHECK(entries(parse_crafted(p.b).root_value()) == Entries{{"x", 5}});
  }
  // A pair that is not two items is still refused, naming what was found.
  {
    Pk p;
    p.proto();
    od(p).op(']').mark().op(']').mark().str("a").op('e').op('e').op(0x85).op('R').stop();
    expect_crafted_error(p, {"OrderedDict items must be (key, value) pairs", "['a']"});
  }
  {  // _rebuild_parameter_with_state(tensor, True, OrderedDict(), {}) and _rebuild_parameter(..., None)
    for (bool with_state : {true, false}) {
      CAPTURE(with_state);
      Pk p;
      p.proto().global("torch._utils", with_state ? "_rebuild_parameter_with_state" : "_rebuild_parameter").mark();
      p.tensor("0", 2, {2}, {1}).op(0x88);
      if (with_state) {
        od(p).op(')').op('R').op('}');
      } else {
        p.op('N');
      }
      p.tuple().op('R').stop();
      PtCheckpoint ck = parse_crafted(p.b, {{"0", floats_bytes({1.5f, -2})}});
      REQUIRE(ck.tensors.size() == 1);
      CHECK(ck.tensors[0]->is_parameter);
      CHECK(ck.tensors[0]->requires_grad);
      CHECK(ck.root_value().as_tensor().to_float32() == std::vector<float>{1.5f, -2});
    }
  }
  {  // Python 2 opcodes: BINSTRING (str of 256+ bytes), INT text (ints beyond 32 bits), and
     // SHORT_BINSTRING holding UTF-8 (decoded as UTF-8, as torch.load does)
    const std::string long_s(300, 'k');
    Pk p;
    p.proto().op('}').mark();
    p.op('T');
    for (int k = 0; k < 4; ++k) p.op(uint8_t(long_s.size() >> (8 * k)));
    p.b.insert(p.b.end(), long_s.begin(), long_s.end());
    const std::string big = "I-9000000000\n", flag = "I01\n";
    p.b.insert(p.b.end(), big.begin(), big.end());
    const std::string e_acute = "caf\xc3\xa9", latin = "ol\xe9";
    p.op('U').op(uint8_t(e_acute.size()));
    p.b.insert(p.b.end(), e_acute.begin(), e_acute.end());
    p.b.insert(p.b.end(), flag.begin(), flag.end());
    p.op('U').op(uint8_t(latin.size()));  // not UTF-8: read as latin-1
    p.b.insert(p.b.end(), latin.begin(), latin.end());
    p.k1(7);
    p.op('u').stop();
    PtCheckpoint ck = parse_crafted(p.b);
    const PyValue& d = ck.root_value();
    REQUIRE(d.entries.size() == 3);
    CHECK(d.entries[0].first->s == long_s);
    CHECK(d.entries[0].second->i == -9000000000LL);
    CHECK(d.entries[1].first->s == "caf\xc3\xa9");
    CHECK(d.entries[1].second->kind == PyKind::Bool);
    CHECK(d.entries[1].second->b);
    CHECK(d.entries[2].first->s == "ol\xc3\xa9");  // latin-1 0xE9 is U+00E9
    CHECK(d.entries[2].second->i == 7);
  }
  {  // INT lines that are not 64-bit decimals are refused
    const std::string bad = "I99999999999999999999\n";
    Pk p;
    p.proto();
    p.b.insert(p.b.end(), bad.begin(), bad.end());
    p.stop();
    expect_crafted_error(p, {"INT", "64 bits"});
  }
}
