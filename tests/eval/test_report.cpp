// report.html (src/cli/report.cpp) and the pages edit, invert, eval and explain write:
// - the markup: text escaped, numbers right-aligned, the slider's script, the SVG curves (log scale
//   only where the values span more than 10x, the bookkeeping columns left out);
// - opened in a real headless Chromium from Debian when it is installed (tools/setup installs it):
//   no console message (a script error or an image that did not load is one), every image loaded,
//   and the screenshot is not blank. Without chromium the cases say so and pass nothing.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/eval.hpp"
#include "cli/explain.hpp"
#include "cli/invert.hpp"
#include "cli/report.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/image.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
namespace tf = gradstyle::data::toyfaces;
namespace report = gradstyle::cli::report;

namespace {

const std::string kBundle = GS_SOURCE_ROOT "/models/toyfaces";

struct Scratch {
  fs::path root;
  explicit Scratch(const std::string& tag) {
    root = fs::temp_directory_path() / ("gs_report_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~Scratch() { fs::remove_all(root); }
  std::string operator/(const std::string& s) const { return (root / s).string(); }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::string chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(c)) return c;
  return "";
}

// stdout of a command (stderr to `err_file`) and its exit status.
std::pair<std::string, int> run(const std::string& cmd, const std::string& err_file) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>" + err_file).c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = ::pclose(p);
  return {out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

// Opens the page in headless Chromium twice: the DOM after load (the page's own image count) and a
// screenshot. Returns the number of images the page loaded.
int64_t open_in_chromium(const std::string& browser, const fs::path& page, const fs::path& scratch) {
  const std::string flags = " --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars "
                            "--user-data-dir=" + (scratch / "profile").string() + " --enable-logging=stderr --v=0 ";
  const std::string url = "file://" + fs::absolute(page).string();
  const std::string log1 = (scratch / "chromium_dom.log").string(), log2 = (scratch / "chromium_shot.log").string();
  const auto [dom, rc1] = run("timeout 120 " + browser + flags + "--dump-dom '" + url + "'", log1);
  CAPTURE(page.string());
  REQUIRE(rc1 == 0);
  // Chromium logs every console message as a CONSOLE line; our pages log none unless something broke.
  std::string console;
  for (const auto& log : {log1}) {
    std::istringstream in(slurp(log));
    for (std::string line; std::getline(in, line);)
      if (line.find("CONSOLE") != std::string::npos) console += line + "\n";
  }
  CHECK_MESSAGE(console.empty(), "console messages:\n" << console);
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(dom, m, std::regex("data-images=\"([0-9]+)/([0-9]+)\"")),
                  "the page's load script did not run");
  CHECK(m[1].str() == m[2].str());
  const fs::path shot = scratch / "screenshot.png";
  const auto [ignored, rc2] = run("timeout 120 " + browser + flags + "--window-size=1000,900 --screenshot=" + shot.string() +
                                      " '" + url + "'",
                                  log2);
  (void)ignored;
  REQUIRE(rc2 == 0);
  REQUIRE(fs::exists(shot));
  const io::Image s = io::load_image(shot.string());
  double mean = 0, var = 0;
  for (uint8_t v : s.pixels) mean += v / double(s.pixels.size());
  for (uint8_t v : s.pixels) var += (v - mean) * (v - mean) / double(s.pixels.size());
  CHECK(std::sqrt(var) > 5.0);  // not a blank page
  return std::stoll(m[1].str());
}

}  // namespace

TEST_CASE("cli/report: markup, escaping, slider and curves") {
  CHECK(report::escape("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  report::Page p("Title <1>");
  p.paragraph("a < b");
  p.table({"name", "l2"}, {{"img.png", "0.125"}});
  p.image_table({"source"}, {{"a.png"}, {""}});
  p.slider("smile", {"-1", "0", "1"}, {{"s_-1/1.png", "s_0/1.png", "s_1/1.png"}}, 1);
  const std::string h = p.html();
  CHECK(h.find("<title>Title &lt;1&gt;</title>") != std::string::npos);
  CHECK(h.find("<p>a &lt; b</p>") != std::string::npos);
  CHECK(h.find("<td class=\"n\">0.125</td>") != std::string::npos);
  CHECK(h.find("<td>img.png</td>") != std::string::npos);
  CHECK(h.find("src=\"s_0/1.png\"") != std::string::npos);  // the start value's image
  CHECK(h.find("type=\"range\"") != std::string::npos);
  CHECK(h.find("max=\"2\"") != std::string::npos);
  CHECK(h.find("data-images") != std::string::npos);
  CHECK(count(h, "<img") == 2);

  const std::string csv = "iteration,seconds,lr,loss,l2\n1,0.5,0.01,100,0.5\n2,0.5,0.01,10,0.4\n3,0.5,0.01,1,0.3\n";
  const std::string svg = report::curves_svg(csv);
  CHECK(count(svg, "<svg") == 2);  // loss and l2; seconds and lr are bookkeeping
  CHECK(svg.find(">loss (log scale)<") != std::string::npos);
  CHECK(svg.find(">l2<") != std::string::npos);  // 0.3..0.5: linear
  CHECK(svg.find("seconds") == std::string::npos);
  CHECK(report::curves_svg("iteration,loss\n1,0.5\n").empty());
  // A column with gaps (a term logged every other row) still draws from what it has.
  CHECK(count(report::curves_svg("iteration,a,b\n1,1,\n2,2,3\n3,3,\n4,4,5\n"), "<svg") == 2);
}

TEST_CASE("cli/report: the edit, invert, eval and explain pages open in headless Chromium") {
  autograd::NoGradGuard ng;
  Scratch s("pages");
  fs::create_directories(s / "in");
  for (int k = 0; k < 2; ++k)
    io::save_png(s / ("in/t" + std::to_string(k) + ".png"),
                 tf::render_image(tf::sample_identity(0, tf::heldout_index(k)), tf::ToyEdit{}, 64));
  std::ostringstream out, err;
  cli::EditArgs e;
  e.checkpoint = kBundle;
  e.images_dir = s / "in";
  e.save_dir = s / "edit";
  e.device = "cpu";
  e.quiet = true;
  e.edit_attribute = "smile";
  e.range = "-1:1:1";
  REQUIRE(cli::run_edit(e, out, err) == 0);
  const std::string eh = slurp(s / "edit/report.html");
  CHECK(count(eh, "type=\"range\"") == 1);
  CHECK(eh.find("smile_-1/00001.png") != std::string::npos);
  CHECK(eh.find("src=\"smile_0/00001.png\"") != std::string::npos);  // starts at 0
  CHECK(count(eh, "src=\"grids/") == 2);

  cli::InvertArgs i;
  i.checkpoint = kBundle;
  i.images_dir = s / "in";
  i.save_dir = s / "inv";
  i.device = "cpu";
  i.quiet = true;
  REQUIRE(cli::run_invert(i, out, err) == 0);
  const std::string ih = slurp(s / "inv/report.html");
  CHECK(ih.find("src=\"../in/t0.png\"") != std::string::npos);
  CHECK(ih.find("src=\"inversions/00002.png\"") != std::string::npos);

  cli::EvalArgs v;
  v.gt_dir = s / "in";
  v.pred_dir = s / "inv/inversions";
  v.by_order = true;
  v.save_dir = s / "eval";
  v.device = "cpu";
  v.quiet = true;
  REQUIRE(cli::run_eval(v, out, err) == 0);
  const std::string vh = slurp(s / "eval/report.html");
  CHECK(vh.find("<td>t1.png</td>") != std::string::npos);
  CHECK(vh.find("src=\"../inv/inversions/00001.png\"") != std::string::npos);

  cli::ExplainArgs x;
  x.checkpoint = kBundle;
  x.image = s / "in/t0.png";
  x.edit_attribute = "smile";
  x.save_dir = s / "explain";
  x.device = "cpu";
  x.quiet = true;
  REQUIRE(cli::run_explain(x, out, err) == 0);

  const std::string browser = chromium();
  if (browser.empty()) {
    MESSAGE("skipped: no chromium (apt-get install chromium, or tools/setup): the pages were not opened in a browser");
    return;
  }
  CHECK(open_in_chromium(browser, s / "edit/report.html", s.root) == 2 + 2);  // slider row images + grids
  CHECK(open_in_chromium(browser, s / "inv/report.html", s.root) == 4);
  CHECK(open_in_chromium(browser, s / "eval/report.html", s.root) == 4);
  CHECK(open_in_chromium(browser, s / "explain/report.html", s.root) > 10);
  // The check itself can fail: a page whose image is missing is caught.
  fs::remove(s / "inv/inversions/00002.png");
  const std::string url = "file://" + fs::absolute(s / "inv/report.html").string();
  const auto [dom, rc] = run("timeout 120 " + browser + " --headless --no-sandbox --disable-gpu --user-data-dir=" + (s / "profile") +
                                 " --enable-logging=stderr --v=0 --dump-dom '" + url + "'",
                             s / "broken.log");
  CHECK(rc == 0);
  CHECK(dom.find("data-images=\"3/4\"") != std::string::npos);
  CHECK(slurp(s / "broken.log").find("image did not load: inversions/00002.png") != std::string::npos);
}
