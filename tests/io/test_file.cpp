// Crash-safe writes, mapped reads, sniffing and the half/bfloat16 conversions.
#include <sys/stat.h>

#include <cmath>
#include <cstring>

#include "gradstyle/io/sniff.hpp"
#include "io_test_util.hpp"

using namespace iotest;

TEST_CASE("io: atomic_write_file replaces the file and leaves no temp file") {
  TempDir d;
  std::string p = d.file("out.bin");
  atomic_write_file(p, std::vector<uint8_t>{1, 2, 3});
  CHECK(read_bytes(p) == std::vector<uint8_t>{1, 2, 3});
  atomic_write_file(p, std::vector<uint8_t>{9});
  CHECK(read_bytes(p) == std::vector<uint8_t>{9});
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path)) n += e.is_regular_file();
  CHECK(n == 1);
  {
    // A writer that is never committed (an exception mid-save) keeps the previous file.
    AtomicFileWriter w(p);
    w.write(std::vector<uint8_t>{7, 7, 7}.data(), 3);
    CHECK(std::filesystem::exists(w.temp_path()));
  }
  CHECK(read_bytes(p) == std::vector<uint8_t>{9});
  CHECK(!std::filesystem::exists(p + ".tmp." + std::to_string(getpid())));
  expect_error<IOError>([&] { atomic_write_file(d.file("no/such/dir/x.bin"), std::vector<uint8_t>{1}); },
                        "no/such/dir/x.bin", {"cannot create temporary file"});
  // Renaming over a directory fails: the temp file is removed, the directory kept.
  std::filesystem::create_directory(d.file("adir"));
  std::filesystem::create_directory(d.file("adir/inner"));
  expect_error<IOError>([&] { atomic_write_file(d.file("adir"), std::vector<uint8_t>{1}); }, "adir", {"rename"});
  CHECK(std::filesystem::is_directory(d.file("adir")));
  CHECK(!std::filesystem::exists(d.file("adir") + ".tmp." + std::to_string(getpid())));
}

TEST_CASE("io: MappedFile refuses directories and special files") {
  TempDir d;
  expect_error<IOError>([&] { MappedFile f(d.path); }, d.path, {"is a directory"});
  std::string fifo = d.file("pipe");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  expect_error<IOError>([&] { MappedFile f(fifo); }, "pipe", {"not a regular file"});  // no hang
  expect_error<IOError>([&] { read_file_bytes("/dev/zero"); }, "/dev/zero", {"not a regular file"});
  MappedFile e(fixture("expected.json"));
  CHECK(e.size() > 1000);
  CHECK(e.bytes()[0] == '{');
}

TEST_CASE("io: format sniffing from the first bytes") {
  CHECK(sniff_file(fixture("state_dict.pt")) == FileKind::Zip);
  CHECK(sniff_file(fixture("legacy.pt")) == FileKind::LegacyTorch);
  CHECK(sniff_file(fixture("fixture.safetensors")) == FileKind::Safetensors);
  CHECK(sniff_file(fixture("u16.npy")) == FileKind::Npy);
  CHECK(sniff_file(fixture("latents.npz")) == FileKind::Zip);
  CHECK(sniff_file(fixture("bare.pkl")) == FileKind::BarePickle);
  CHECK(sniff_file(fixture("rgb.png")) == FileKind::Png);
  CHECK(sniff_file(fixture("rgb.jpg")) == FileKind::Jpeg);
  CHECK(sniff_file(fixture("rgb.bmp")) == FileKind::Bmp);
}

TEST_CASE("io: half and bfloat16 conversions round to nearest even") {
  // Every half value survives half -> float -> half (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = half_to_float(uint16_t(h));
    if (std::isnan(f)) {
      CHECK((float_to_half(f) & 0x7C00) == 0x7C00);
      continue;
    }
    if (float_to_half(f) != h) FAIL_CHECK("half 0x", std::hex, h, " round trip gives 0x", float_to_half(f));
  }
  CHECK(half_to_float(0x3C00) == 1.0f);
  CHECK(half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(float_to_half(65520.0f) == 0x7C00);                // rounds to infinity
  CHECK(float_to_half(65519.0f) == 0x7BFF);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie -> even
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0);        // tie between 0 and min subnormal -> 0
  CHECK(float_to_half(std::ldexp(1.5f, -25)) == 1);
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 2);        // 1.5 ulp subnormal tie -> even (2)
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);  // tie -> even
  CHECK(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = bf16_to_float(uint16_t(b));
    if (!std::isnan(f) && float_to_bf16(f) != b) FAIL_CHECK("bf16 0x", std::hex, b, " round trip");
  }
}
