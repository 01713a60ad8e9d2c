// .npy / .npz: NumPy-written fixtures (every value), round trips and malformed headers.
#include <cstring>

#include "gradstyle/io/npy.hpp"
#include "io_test_util.hpp"

using namespace iotest;

namespace {

std::vector<uint8_t> npy_file(const std::string& header, size_t data_bytes, uint8_t major = 1) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  if (major == 1) {
    b.push_back(uint8_t(header.size()));
    b.push_back(uint8_t(header.size() >> 8));
  } else {
    for (int k = 0; k < 4; ++k) b.push_back(uint8_t(header.size() >> (8 * k)));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}

void expect_npy_error(const std::vector<uint8_t>& b, const std::vector<std::string>& kw) {
  expect_error<FormatError>([&] { parse_npy(ByteSpan(b.data(), b.size()), "bad.npy"); }, "bad.npy", kw);
}

}  // namespace

TEST_CASE("io: npy fixtures (fortran order, big-endian, uint16, scalar, bool) match numpy") {
  for (const auto& [file, want] : expected()["npy"].items()) {
    INFO("fixture ", file);
    check_tensor(load_npy(fixture(file)), want, file);
  }
}

TEST_CASE("io: npz stored and deflated archives match numpy") {
  for (const auto& [file, want] : expected()["npz"].items()) {
    INFO("fixture ", file);
    NamedTensors t = load_npz(fixture(file));
    std::vector<std::string> names;
    for (const auto& [n, v] : t) names.push_back(n);
    CHECK(names == want["order"].get<std::vector<std::string>>());
    for (const auto& [n, v] : t) check_tensor(v, want["tensors"][n], file + ":" + n);
  }
}

TEST_CASE("io: npy and npz write then read back") {
  TempDir d;
  std::vector<float> w(1 * 18 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) * 0.25f - 3.0f;
  RawTensor lat = raw_from_floats({1, 18, 4}, w);
  save_npy(d.file("w.npy"), lat);
  RawTensor back = load_npy(d.file("w.npy"));
  CHECK(back.shape == lat.shape);
  CHECK(back.data == lat.data);
  std::vector<uint8_t> raw = read_bytes(d.file("w.npy"));
  CHECK((raw.size() - lat.data.size()) % 64 == 0);  // data aligned to 64 bytes
  int64_t one = 5;
  RawTensor scalar = make_raw_tensor(DType::i64, {}, &one);
  save_npy(d.file("s.npy"), scalar);
  CHECK(load_npy(d.file("s.npy")).get_int(0) == 5);
  NamedTensors nt{{"w", lat}, {"s", scalar}};
  save_npz(d.file("p.npz"), nt);
  NamedTensors nb = load_npz(d.file("p.npz"));
  REQUIRE(nb.size() == 2);
  CHECK(nb[0].first == "w");
  CHECK(nb[0].second.data == lat.data);
  CHECK(nb[1].second.shape.empty());
  uint16_t bf = float_to_bf16(1.0f);
  expect_error<DTypeError>([&] { save_npy(d.file("bf.npy"), make_raw_tensor(DType::bf16, {1}, &bf)); }, "save_npy",
                           {"bfloat16"});
  CHECK(!std::filesystem::exists(d.file("bf.npy")));
}

TEST_CASE("io: npy malformed headers and refused dtypes") {
  auto hdr = [](const std::string& d, const std::string& shape, const std::string& fo = "False") {
    return "{'descr': '" + d + "', 'fortran_order': " + fo + ", 'shape': " + shape + ", }\n";
  };
  CHECK_NOTHROW([&] { auto b = npy_file(hdr("<f4", "(2,)"), 8); parse_npy(ByteSpan(b.data(), b.size()), "x"); }());
  CHECK_NOTHROW([&] { auto b = npy_file(hdr("<f4", "(2,)"), 8, 2); parse_npy(ByteSpan(b.data(), b.size()), "x"); }());
  expect_npy_error(npy_file(hdr("|O", "(2,)"), 16), {"object arrays", "refused"});
  expect_npy_error(npy_file(hdr("<U4", "(2,)"), 32), {"refused"});
  expect_npy_error(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", 4), {"invalid .npy header"});
  expect_npy_error(npy_file(hdr("<c8", "(2,)"), 16), {"unsupported .npy dtype '<c8'"});
  expect_npy_error(npy_file(hdr("<f4", "(2,)"), 7), {"truncated"});
  expect_npy_error(npy_file(hdr("<f4", "(2,)"), 9), {"trailing bytes"});
  expect_npy_error(npy_file(hdr("<f4", "(-2,)"), 0), {"non-negative"});
  expect_npy_error(npy_file(hdr("<f4", "(99999999999999999999,)"), 0), {"too large"});
  expect_npy_error(npy_file(hdr("<f4", "(4294967296, 4294967296, 4294967296)"), 0), {"overflows"});
  expect_npy_error(npy_file(hdr("<f4", "(2,)", "Maybe"), 8), {"fortran_order"});
  expect_npy_error(npy_file("{'descr': '<f4', 'shape': (2,), }\n", 8), {"exactly descr"});
  expect_npy_error(npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8), {"duplicate key"});
  expect_npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8), {"unexpected key 'x'"});
  expect_npy_error(npy_file("__import__('os').system('x')", 8), {"invalid .npy header"});
  expect_npy_error(npy_file(hdr("<f4", "(2,)"), 8, 4), {"version 4.0"});
  expect_npy_error({0x93, 'N', 'U', 'M', 'P', 'X', 1, 0, 0, 0}, {"wrong magic"});
  expect_npy_error({}, {"empty"});
  std::vector<uint8_t> big = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xFF, 0xFF, 0xFF, 0x7F};
  expect_npy_error(big, {"exceeds 65536"});
}

TEST_CASE("io: npz damage and non-npy members") {
  std::vector<uint8_t> good = read_bytes(fixture("latents_compressed.npz"));
  auto parse = [&](const std::vector<uint8_t>& b) { parse_npz(ByteSpan(b.data(), b.size()), "bad.npz"); };
  CHECK_NOTHROW(parse(good));
  for (size_t cut : {good.size() / 3, good.size() - 30}) {
    std::vector<uint8_t> b(good.begin(), good.begin() + ptrdiff_t(cut));
    expect_error<FormatError>([&] { parse(b); }, "bad.npz", {"truncated or not a zip"});
  }
  // Corrupt deflate stream: flip bytes inside the first member's data (inflate error or CRC).
  auto b = good;
  for (size_t i = 60; i < 90; ++i) b[i] ^= 0x5A;
  expect_error<FormatError>([&] { parse(b); }, "bad.npz", {"zip entry 'w.npy'"});
  // Declared uncompressed size far larger than deflate can produce.
  auto c = good;
  for (size_t i = 0; i + 4 <= c.size(); ++i)
    if (std::memcmp(&c[i], "PK\x01\x02", 4) == 0) {
      uint32_t huge = 0x7FFFFFFF;
      std::memcpy(&c[i + 24], &huge, 4);
      break;
    }
  expect_error<FormatError>([&] { parse(c); }, "bad.npz", {"implausible size"});
  expect_error<FormatError>([&] { load_npz(fixture("state_dict.pt")); }, "state_dict.pt", {"not a .npy array"});
}
