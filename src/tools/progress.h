// ProgressLine reports the progress of long work (a benchmark's load phase; node operations,
// repairs and large scans in the CLI) the way an operator expects from a terminal program:
//
//   loading  45,000/100,000 records (45%)  41.2 MiB  8,120 records/s  7.4 MiB/s  ETA 7 s
//
// redrawn in place at most every 100 ms while the work runs, and left on screen, with the time it
// took, when it ends. Where the output is not a terminal (a pipe, a file, CI's log) it stays
// silent, so logs do not fill with carriage returns; or, for scripts that want to follow along,
// it writes one JSON object per line, at most once a second, and a last one when the work ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace cairn::tools {

class ProgressLine {
 public:
  enum class Mode {
    kAuto,      // kTerminal when `fd` is a terminal, else kQuiet
    kTerminal,  // one line, redrawn in place
    kJson,      // JSON lines
    kQuiet,     // nothing
  };
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string label = "working";  // what is being done: "loading", "repairing"
    std::string unit = "items";     // what is counted: "records", "partitions"
    uint64_t total = 0;             // items in all; 0: unknown (no percentage, no ETA)
    uint64_t total_bytes = 0;       // bytes in all, when the work is counted in bytes; 0: unknown
    Mode mode = Mode::kAuto;
    int fd = 2;  // standard error, so that standard output keeps only the program's results
    std::chrono::milliseconds redraw_interval{100};  // terminal
    std::chrono::milliseconds json_interval{1000};
    // Seams for tests: where the text goes (default: written to `fd`), the time, and the
    // terminal's width in columns (0: asked of the terminal, 80 when it does not say).
    std::function<void(std::string_view)> write;
    std::function<Clock::time_point()> now;
    int width = 0;
  };

  // The figures a line shows.
  struct Snapshot {
    std::string label, unit;
    uint64_t done = 0, total = 0, bytes = 0, total_bytes = 0;
    double elapsed_s = 0;
    double items_per_s = 0, bytes_per_s = 0;  // over the last few seconds
    double eta_s = -1;                        // -1: unknown
    bool finished = false;
  };

  explicit ProgressLine(Options options);
  // Finish()es the line if that has not been done.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Counts `items` (and `bytes`) more done. Thread safety: Add(), Set(), Clear() and Finish()
  // may be called from any thread; the line is drawn by whichever call finds it due.
  void Add(uint64_t items, uint64_t bytes = 0);
  // Sets the counts (for work that reports totals rather than steps).
  void Set(uint64_t done, uint64_t bytes = 0);
  // Erases the line from the terminal, so that other output can be printed; the next Add() draws
  // it again.
  void Clear();
  // Draws the final state (the time it took instead of the ETA) and ends the line.
  void Finish();

  // Whether this line writes anything (a terminal or JSON): callers that print a line of their own
  // where no progress is drawn ("loading 100000 records...") ask this.
  bool visible() const { return mode_ != Mode::kQuiet; }
  Mode mode() const { return mode_; }

  // The text of one terminal line (no \r, no escape codes), at most `width` - 1 columns, and the
  // JSON object of one JSON line (no newline).
  static std::string FormatLine(const Snapshot& s, int width);
  static std::string FormatJson(const Snapshot& s);
  // "7 s", "3 min 20 s", "2 h 05 min".
  static std::string FormatDuration(double seconds);
  // 45000 -> "45,000".
  static std::string FormatCount(uint64_t n);
  // 43253760 -> "41.2 MiB".
  static std::string FormatBytes(double bytes);

 private:
  Snapshot Take(Clock::time_point now);  // guarded by mu_
  void Draw(bool final);                 // guarded by mu_
  void Write(std::string_view text);

  Options options_;
  Mode mode_;
  std::mutex mu_;
  // Guarded by mu_.
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  bool drawn_ = false;  // a line is on the terminal now
  bool finished_ = false;
  uint64_t done_ = 0, bytes_ = 0;
  // (time, done, bytes) samples of the last few seconds, for the current rate.
  struct Sample {
    Clock::time_point at;
    uint64_t done, bytes;
  };
  std::deque<Sample> samples_;
};

}  // namespace cairn::tools
