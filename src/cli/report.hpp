#pragma once
// report.html: the one page each of demo, invert, edit, eval and train writes beside its outputs.
// Self-contained (inline CSS, inline SVG plots, a few lines of script; no network), images
// referenced by relative paths. On load the page counts its images and writes
// data-images="loaded/total" on <body>; one that fails to load is a console error, which is what
// the headless-Chromium test looks for (tests/eval/test_report.cpp).
#include <string>
#include <vector>

namespace gradstyle::cli::report {

std::string escape(const std::string& text);  // & < > " '
// How a page in `page_dir` refers to `file`: its path relative to the page (generic separators),
// or the absolute path when there is none.
std::string relative_ref(const std::string& page_dir, const std::string& file);

class Page {
 public:
  explicit Page(std::string title);
  void heading(const std::string& text);
  void paragraph(const std::string& text);  // escaped
  void image(const std::string& src, const std::string& alt, int max_width_px = 0);
  // A table of text cells (escaped); numeric-looking cells are right-aligned.
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
  // A table whose cells are images (src, relative to the page; "" leaves the cell empty).
  void image_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& srcs,
                   int cell_px = 128);
  // One image per row whose source follows a range input: rows[r][v] is row r's image for
  // values[v] (an edit strength); the slider starts at `start`.
  void slider(const std::string& label, const std::vector<std::string>& values,
              const std::vector<std::vector<std::string>>& rows, size_t start = 0, int cell_px = 192);
  void raw(const std::string& html);  // already-escaped markup (an SVG plot)
  std::string html() const;
  void write(const std::string& path) const;  // crash-safe

 private:
  std::string title_, body_;
  int sliders_ = 0;
};

// Loss curves from a metrics.csv (first column the iteration): one SVG line plot per column whose
// name is not in `skip`, on a log scale when every value is positive and they span more than 10x.
// Empty when the file has fewer than two rows.
std::string curves_svg(const std::string& csv_text, const std::vector<std::string>& skip = {"seconds", "lr"});

}  // namespace gradstyle::cli::report
