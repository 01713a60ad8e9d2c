// safetensors: fixture values, views, round trips and every validation rule of FORMATS.md §6.2.
#include <cstring>
#include <map>

#include "gradstyle/io/safetensors.hpp"
#include "io_test_util.hpp"

using namespace iotest;

namespace {

// A file from a header string and a data buffer.
std::vector<uint8_t> st_file(const std::string& header, size_t data_bytes, uint64_t declared = UINT64_MAX) {
  std::vector<uint8_t> b(8);
  uint64_t n = declared == UINT64_MAX ? header.size() : declared;
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0x11);
  return b;
}

void expect_st_error(const std::vector<uint8_t>& b, const std::vector<std::string>& keywords) {
  expect_error<FormatError>([&] { parse_safetensors(ByteSpan(b.data(), b.size()), "bad.safetensors"); },
                            "bad.safetensors", keywords);
}

}  // namespace

TEST_CASE("io: safetensors fixture values, order, metadata and views") {
  const auto& e = expected()["safetensors"]["fixture.safetensors"];
  SafetensorsFile f(fixture("fixture.safetensors"));
  std::vector<std::string> order;
  for (const auto& t : f.tensors()) order.push_back(t.name);
  CHECK(order == e["order"].get<std::vector<std::string>>());
  CHECK(f.metadata() == e["metadata"].get<std::map<std::string, std::string>>());
  for (const auto& [n, want] : e["tensors"].items()) check_tensor(f.load(n), want, n);
  ByteSpan v = f.view("w");
  CHECK(v.size() == 24);
  RawTensor w = f.load("w");
  CHECK(std::memcmp(v.data(), w.data.data(), 24) == 0);
  CHECK(f.find("scalar")->shape.empty());
  CHECK(f.load("nothing").numel() == 0);
  expect_error<ValueError>([&] { f.load("nope"); }, "fixture.safetensors", {"no tensor named 'nope'"});
  std::map<std::string, std::string> meta;
  NamedTensors all = load_safetensors(fixture("fixture.safetensors"), &meta);
  CHECK(all.size() == e["tensors"].size());
  CHECK(meta.at("source") == "make_io_fixtures");
}

TEST_CASE("io: safetensors write then read back, sorted and 64-byte aligned") {
  TempDir d;
  NamedTensors in;
  in.emplace_back("b.small", raw_from_floats({2}, {1.5f, -2.0f}));
  std::vector<int64_t> ids{7, -8, int64_t(1) << 40};
  in.emplace_back("a.ids", make_raw_tensor(DType::i64, {3}, ids.data()));
  uint16_t h[3] = {float_to_half(0.5f), float_to_half(-3.0f), float_to_bf16(2.0f)};
  in.emplace_back("half", make_raw_tensor(DType::f16, {2}, h));
  in.emplace_back("bf", make_raw_tensor(DType::bf16, {1}, h + 2));
  in.emplace_back("empty", make_raw_tensor(DType::f32, {0, 4}, nullptr));
  std::string path = d.file("out.safetensors");
  save_safetensors(path, in, {{"format", "gradstyle/1"}, {"kind", "latents"}});
  SafetensorsFile f(path);
  CHECK(f.header().data_start % 64 == 0);
  std::vector<std::string> order;
  for (const auto& t : f.tensors()) order.push_back(t.name);
  CHECK(order == std::vector<std::string>{"a.ids", "b.small", "empty", "bf", "half"});
  CHECK(f.metadata().at("kind") == "latents");
  for (const auto& [n, t] : in) {
    RawTensor r = f.load(n);
    CHECK(r.dtype == t.dtype);
    CHECK(r.shape == t.shape);
    CHECK(r.data == t.data);
  }
  CHECK(f.load("bf").get(0) == 2.0);
  CHECK(f.load("half").get(1) == -3.0);
  // No temp file left behind.
  CHECK(!std::filesystem::exists(path + ".tmp." + std::to_string(getpid())));
  expect_error<ValueError>([&] { save_safetensors(d.file("dup.safetensors"), {in[0], in[0]}); }, "b.small",
                           {"duplicate"});
}

TEST_CASE("io: safetensors from bytes in memory (a checkpoint broadcast between ranks) = from the file") {
  TempDir d;
  NamedTensors in;
  in.emplace_back("w", raw_from_floats({2, 2}, {1.f, 2.f, 3.f, 4.f}));
  std::vector<int64_t> it{7};
  in.emplace_back("iteration", make_raw_tensor(DType::i64, {}, it.data()));
  const std::map<std::string, std::string> meta{{"format", "gradstyle-train-checkpoint-1"}};
  const std::vector<uint8_t> bytes = serialize_safetensors(in, meta);
  save_safetensors(d.file("c.safetensors"), in, meta);
  std::map<std::string, std::string> m1, m2;
  NamedTensors a = load_safetensors_bytes(ByteSpan(bytes.data(), bytes.size()), "the broadcast", &m1);
  NamedTensors b = load_safetensors(d.file("c.safetensors"), &m2);
  CHECK(m1 == m2);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.data == b[i].second.data);
    CHECK(a[i].second.shape == b[i].second.shape);
  }
  // The same validation: a truncated buffer is refused, named as given.
  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 4);
  expect_error<FormatError>([&] { load_safetensors_bytes(ByteSpan(cut.data(), cut.size()), "the broadcast"); },
                            "the broadcast", {});
}

TEST_CASE("io: safetensors validation rules") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK_NOTHROW([&] { auto b = st_file(ok, 8); parse_safetensors(ByteSpan(b.data(), b.size()), "x"); }());
  // 1. too small, empty
  expect_st_error({1, 2, 3}, {"header too small"});
  expect_st_error({}, {"empty"});
  // 2. header length 2^63, above the cap, beyond the file
  expect_st_error(st_file(ok, 8, uint64_t(1) << 63), {"header too large"});
  expect_st_error(st_file(ok, 8, 100'000'001), {"header too large"});
  expect_st_error(st_file(ok, 8, ok.size() + 100), {"invalid header length", "truncated"});
  // 3. JSON and padding
  expect_st_error(st_file(" " + ok, 8), {"must start with '{'"});
  expect_st_error(st_file(ok + "\n", 8), {"followed only by spaces"});
  CHECK_NOTHROW([&] { auto b = st_file(ok + "      ", 8); parse_safetensors(ByteSpan(b.data(), b.size()), "x"); }());
  expect_st_error(st_file(R"({"a":{"dtype":"F32",})", 8), {"invalid header", "parse error"});
  expect_st_error(st_file("{\"a\xff\":{}}", 0), {"invalid header"});
  // 4. structure
  expect_st_error(st_file(R"({"a":[1]})", 0), {"entry 'a'"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), {"exactly dtype, shape and data_offsets"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), {"unknown field 'x'"});
  expect_st_error(st_file(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
                  {"__metadata__", "expected a string"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", 8), {"tensor 'a'"});
  // 5. duplicates
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                  {"duplicate tensor name 'a'"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), {"duplicate key 'dtype'"});
  // 6. numbers
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), {"invalid shape", "negative"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8), {"invalid shape"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}})", 8), {"invalid offset"});
  // 7. dtype
  expect_st_error(st_file(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", 8), {"unknown dtype 'F31'"});
  // 8. offsets: overlap, hole, not starting at 0, end < begin
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                  {"invalid offset for tensor 'b'", "overlapping"});
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), {"invalid offset for tensor 'a'"});
  expect_st_error(st_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})", 8), {"tensor 'a'"});
  // 9. overflow and misaligned sub-byte types
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8), {"overflow"});
  expect_st_error(st_file(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2), {"misaligned"});
  // 10. size does not match the offsets
  expect_st_error(st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), {"invalid shape, data type, or offset"});
  // 11. coverage: trailing bytes or a shorter buffer
  expect_st_error(st_file(ok, 9), {"not fully covered"});
  expect_st_error(st_file(ok, 4), {"not fully covered"});
  // Sub-byte and F8 types validate, but cannot be loaded as RawTensor.
  auto f4 = st_file(R"({"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", 2);
  CHECK(parse_safetensors(ByteSpan(f4.data(), f4.size()), "x").tensors[0].bits == 4);
}

TEST_CASE("io: safetensors truncated fixture and bad paths") {
  std::vector<uint8_t> good = read_bytes(fixture("fixture.safetensors"));
  const std::pair<size_t, const char*> cuts[] = {{0, "empty"},
                                                   {5, "header too small"},
                                                   {8, "invalid header length"},
                                                   {40, "truncated?"},
                                                   {good.size() / 2, "truncated?"},
                                                   {good.size() - 1, "not fully covered"}};
  for (const auto& [cut, why] : cuts) {
    std::vector<uint8_t> b(good.begin(), good.begin() + ptrdiff_t(cut));
    expect_st_error(b, {why});
  }
  TempDir d;
  expect_error<IOError>([&] { SafetensorsFile f(d.path); }, d.path, {"is a directory"});
  expect_error<IOError>([&] { SafetensorsFile f(d.file("none.safetensors")); }, "none.safetensors", {"cannot open"});
}
