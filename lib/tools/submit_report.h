// What jsd-submit prints about a job: a record as text (--status,
// --cancel), and the one-line JSON objects of --json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "job_wire.h"

namespace jsd {

// type: "status" or "cancel" (which adds what the cancel did).
void print_record_text(const nlohmann::json& r, const std::string& node, const std::string& type);

// The answer to --status or --cancel, a record (type "status", "cancel")
// or this node's refusal ("refused"), as text or JSON; returns the exit
// status (255 for a refusal: the job never ran).
int print_query_answer(const nlohmann::json& r, const std::string& node, const std::string& type, bool json);

// The --json object of a --no-wait submission, stored on this node.
nlohmann::json queued_json(const std::string& id, const std::string& node, const std::string& job, double submitted);

// The notes on standard error about a job that ended (a timeout, a
// signal, not after we were interrupted ourselves, its own exit status 254
// or 255, which is not jsd's); a job that failed to start, and one whose
// outcome cannot be known (lost, unknown: unknowable_why), are reported
// even with -q, as an error.
void print_end_notes(const nlohmann::json& r, const std::string& node, const std::string& id, bool quiet,
                     bool interrupted);

// Why the outcome of job id, ended as e (lost or unknown), cannot be known:
// "job ID was lost: ...", "the outcome of job ID cannot be known: ...".
std::string unknowable_why(const JobEnd& e, const nlohmann::json& r, const std::string& id);

// The --json object of a submission whose job ended (or had ended):
// exit_status as jsd-submit exits with it (job_wire.h), and exit_from,
// "job" or "jsd", whose status that is.
nlohmann::json end_json(const nlohmann::json& r, const std::string& id, const std::string& node, const std::string& job,
                        double submitted, bool duplicate);

// A submission that jsd-submit gave up on and that may have reached its
// node: "state": "unknown", with the id to query.
nlohmann::json unknown_json(const std::string& id, const std::string& node, const std::string& job, double submitted);

// The answer to --history ("history": its records) or --jobs ("jobs"), as
// a table or (json) JSON Lines, one object per record or job; 0, or 255
// for an answer that is not one.
int print_listing(const nlohmann::json& answer, const std::string& node, const std::string& type, bool json);

// A submission this node recorded as refused by its target (a durable one
// that the target can never accept): the text of --status.
void print_refusal_text(const nlohmann::json& r, const std::string& node);

}  // namespace jsd
