// Stopping early, as a batch job on a cluster must. SIGUSR1 and SIGTERM (what
// Slurm sends before and at a job's time limit, and on scancel) only set a
// flag; the program agrees on it at the next training step, checkpoints there
// (inside the epoch if need be) and exits with kExitRequeue, which the job
// scripts take as "requeue me". The same happens, signal or not, when the
// job's deadline minus a margin is reached. A second signal changes nothing:
// checkpoints are written to a temporary file and renamed.
#pragma once

#include <string>

#include "mpi/comm.h"

namespace rs {

constexpr int kExitRequeue = 75;  // EX_TEMPFAIL (sysexits.h): stopped early, run me again to continue

// Installs the SIGUSR1/SIGTERM handlers (once, at start).
void install_stop_signals();
// The signal that asked this process to stop, 0 if none.
int stop_signal();

// When the allocation ends. Sources, first found: --deadline (seconds since
// the epoch, "+SECONDS" from now, or local "YYYY-MM-DDTHH:MM:SS"),
// SLURM_JOB_END_TIME, `squeue -h -o %e -j $SLURM_JOB_ID` (Slurm 22.05 does
// not set the variable). Work stops `margin` seconds before it.
struct Deadline {
  double at = 0;  // Unix seconds; 0: no deadline
  double margin = 0;
  std::string source;  // for the first line
  // Seconds until work must stop (deadline - margin - now); huge without a deadline.
  double left() const;
  bool reached() const { return at > 0 && left() <= 0; }
  std::string describe() const;  // "none" or "2026-11-30T06:00:00 (squeue), stop 60 s before"
};

// Rank 0 finds the deadline and broadcasts it; a malformed --deadline is a UserError.
Deadline find_deadline(const std::string& option, double margin, const Comm& world);

// Why this process stops, for a message: "signal 10", or "the deadline".
std::string stop_cause();

// The local stop condition: a signal, or the deadline reached.
inline bool stop_requested(const Deadline& d) { return stop_signal() != 0 || d.reached(); }

// Parses a --deadline value at time `now` (Unix seconds); false if malformed
// or past the year 9999.
bool parse_deadline(const std::string& text, double now, double* at);
// Why a --deadline-margin value is not one ("" if it is): a finite number of seconds >= 0.
std::string check_deadline_margin(const std::string& text);

}  // namespace rs
