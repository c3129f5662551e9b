"""`asl-motiongpt <command>`: the one entry point. `COMMANDS` (at the end) lists every command: its
help line, its arguments, whether it compiles programs (those use the persistent compilation cache)
and whether it takes `--config.key=value` overrides, and the function that runs it.
`asl-motiongpt --help` prints the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable

from asl_motiongpt import corpora, storage
from asl_motiongpt.pose.video import VideoExtraMissing


def run_prepare(args) -> int:
  from asl_motiongpt.data.prepare import PrepareOptions, prepare, print_summary
  options = PrepareOptions(corpus=args.corpus, src=args.src, out=args.out,
                           splits=tuple(args.splits) if args.splits else None, strict=args.strict,
                           face=args.face, dims=args.dims, fps=args.fps,
                           max_text_chars=args.max_text_chars, overwrite=args.overwrite, workers=args.workers,
                           world_landmarks=args.world_landmarks, min_visibility=args.min_visibility)
  stats = prepare(options)
  print_summary(stats)
  print(f"results: {stats['dataset_dir']} (use it as --config.data.prepared={storage.absolute(args.out)})")
  return 0


def run_sample_corpus(args) -> int:
  from asl_motiongpt.corpora.sample import SMALL, SampleSizes, write_sample_corpus
  sizes = SMALL if args.small else SampleSizes()
  folders = write_sample_corpus(args.out, sizes, seed=args.seed)
  print(json.dumps(folders, indent=1))
  return 0


def run_demo(args) -> int:
  from asl_motiongpt.workflows.demo import run_demo as demo
  demo(args.workdir, small=args.small)
  return 0


def run_convert_hf(args) -> int:
  from asl_motiongpt.llm import load_hf
  from asl_motiongpt.llm.checkpoint import save_llm
  hf_dir = storage.local_copy(args.hf_dir)  # a bucket folder: staged on this host
  config, params = load_hf(hf_dir, scan_layers=args.scan_layers)
  save_llm(args.out, config, params, tokenizer_dir=hf_dir)
  count = sum(x.size for x in __import__("jax").tree.leaves(params))
  print(f"{config.model_type}: {config.num_layers} layers, hidden {config.hidden_size}, vocab {config.vocab_size}, "
        f"{count / 1e6:.2f}M parameters -> {args.out}")
  return 0


def run_export_hf(args) -> int:
  from asl_motiongpt.llm import export_hf
  from asl_motiongpt.llm.checkpoint import load_llm
  if args.workdir:
    from asl_motiongpt.eval.inference import ChainModel, export_chain_hf
    model = ChainModel.load(args.workdir, args.stage, checkpoint=args.checkpoint)
    out = export_chain_hf(model, args.out)
    print(f"results: stage {model.stage_name!r} of {args.workdir} ({model.llm_config.model_type}, "
          f"{model.vocab.num_codes} motion codes from id {model.vocab.first_code_id}) exported to {out}")
    return 0
  if args.stage or args.checkpoint != "last":
    raise ValueError("--stage and --checkpoint pick a stage of a chain and its checkpoint: use them with --workdir, "
                     "not --llm-checkpoint")
  config, params = load_llm(args.llm_checkpoint)
  tokenizer = storage.join(args.llm_checkpoint, "tokenizer")
  tokenizer = storage.local_copy(tokenizer) if storage.exists(tokenizer) else None
  with tempfile.TemporaryDirectory(prefix="asl-export-") as local:  # safetensors writes local files
    export_hf(config, params, local, tokenizer_dir=tokenizer)
    storage.upload(local, args.out)
  print(f"results: {config.model_type} exported to {storage.absolute(args.out)} (config.json + safetensors)")
  return 0


def _join_job() -> None:
  """Commands that run as one job of several processes (train, eval, translate, generate, ablate) join
  it here: TPU pods and SLURM are detected, elsewhere ASL_COORDINATOR / ASL_NUM_PROCESSES /
  ASL_PROCESS_ID (launch/local_multiprocess.sh); one process alone does nothing. Every process then
  runs the same command on its share of the devices; process 0 prints the results and writes the files."""
  from asl_motiongpt.parallel import init_runtime
  init_runtime()


def print_once(*values, **kwargs) -> None:
  """parallel.runtime.print_once (process 0 of a job prints), imported when used: `asl-motiongpt
  --help` and the commands that do not compute stay free of JAX's import time."""
  from asl_motiongpt.parallel.runtime import print_once as print_on_process_0
  print_on_process_0(*values, **kwargs)


def run_train(args) -> int:
  from asl_motiongpt.config_loader import load_config
  from asl_motiongpt.parallel import is_main_process
  from asl_motiongpt.train.chain import run_chain, summary_table
  config = load_config(args.config, args.overrides)  # a bad config fails before the job starts
  if args.dry_run:
    return run_dry_run(args, config)
  if not args.workdir:
    raise ValueError("train needs --workdir (where checkpoints, logs and summaries go)")
  _join_job()
  results = run_chain(config, args.workdir)    # every config is a chain: the tokenizer stage, then LLM stages
  if is_main_process():
    print("\n" + summary_table(results))
    for name, result in results.items():
      if isinstance(result, dict) and "code_cache" in result:
        print(f"[{name}] codes of every example: {result['code_cache']}")
    from asl_motiongpt.chain_config import evaluator_only
    following = (f"score a chain's signs with it: asl-motiongpt eval --workdir CHAIN --evaluator {args.workdir}"
                 if evaluator_only(config) else f"next: asl-motiongpt eval --workdir {args.workdir} --split dev")
    print(f"results: {storage.absolute(args.workdir)} (per stage: summary.json, logs/ for TensorBoard; "
          f"loss_curves.png; {following})")
  return 0


def run_dry_run(args, config) -> int:
  from asl_motiongpt.train import dry_run
  dry_run.use_topology(args.topology)  # before JAX starts its backend
  devices = dry_run.topology_devices(args.topology)
  planned_tpu = dry_run.tpu_slice(args.topology)
  device_memory_gib = args.device_memory_gib or (planned_tpu.device_memory_gib if planned_tpu else None)
  if args.fit:
    return run_fit(args, config, devices, device_memory_gib)
  plans = dry_run.plan_chain(config, devices, args.workdir)
  print("\n" + dry_run.table(plans, device_memory_gib))
  if args.plan_out:  # for scripts comparing settings
    import dataclasses
    storage.write_json(args.plan_out, [{**dataclasses.asdict(p), "peak_bytes": p.peak_bytes} for p in plans])
  compiled = [plan for plan in plans if not plan.does_not_fit]
  where = f"{args.topology} ({len(devices)} devices" + (f", {planned_tpu.accelerator_type} x {planned_tpu.slices}"
                                                        if planned_tpu and planned_tpu.slices > 1 else "") + ")"
  summary = f"results: dry run of {len(plans)} stages on {where}"
  if compiled:
    worst = max(compiled, key=lambda p: p.peak_bytes)
    summary += f"; largest per-device peak {worst.peak_bytes / dry_run.GIB:.2f} GiB ({worst.stage})"
  too_big = [plan.stage for plan in plans if plan.does_not_fit]
  if too_big:
    summary += f"; DOES NOT FIT: {', '.join(too_big)}"
  print(summary + "; nothing was read or trained")
  return 1 if too_big else 0


def run_fit(args, config, devices, device_memory_gib) -> int:
  from asl_motiongpt.train import dry_run, plan_fit
  if not device_memory_gib:
    raise SystemExit("--fit needs the device memory: --device-memory-gib N (a TPU topology brings its own)")
  result = plan_fit.fit_chain(config, devices, device_memory_gib * dry_run.GIB, args.workdir)
  print("\n--fit, cheapest first:")
  for overrides, verdict in result.tried:
    print(f"  {' '.join(overrides) or '(as configured)'}: {verdict}")
  print("\n" + dry_run.table(result.plans, device_memory_gib))
  if args.plan_out:
    import dataclasses
    storage.write_json(args.plan_out, {"overrides": result.overrides, "plans": [
        {**dataclasses.asdict(p), "peak_bytes": p.peak_bytes} for p in result.plans]})
  if result.overrides is None:
    print(f"results: no setting tried fits {device_memory_gib:g} GiB per device on {args.topology}: more devices, "
          "a smaller batch or a smaller model")
    return 1
  print(f"results: fits {device_memory_gib:g} GiB per device on {args.topology} with: "
        f"{' '.join(result.overrides) or '(the config as it is)'}")
  return 0


def run_eval(args) -> int:
  from asl_motiongpt.eval.inference import ChainModel
  from asl_motiongpt.eval.run_eval import EvalOptions, chain_corpora, decoding_tag, evaluate, output_dir, table
  from asl_motiongpt.parallel import describe
  _join_job()
  model = ChainModel.load(args.workdir, args.stage, checkpoint=args.checkpoint)
  reader = ChainModel.load(args.back_translator) if args.back_translator else None
  from asl_motiongpt.motion_evaluator.artifact import Evaluator
  scorer = Evaluator.load(args.evaluator) if args.evaluator else None
  from asl_motiongpt.checkpoints import final_checkpoint
  step = storage.path(final_checkpoint(args.workdir, model.stage_name, args.checkpoint)).name
  print_once(f"[eval] stage {model.stage_name}, checkpoint {args.checkpoint} (step {step}), on mesh {describe(model.mesh)}")
  corpora = [args.corpus] if args.corpus else chain_corpora(model.config)
  # greedy always; with --beam N also beam search, reported beside it
  decodings = [model] + ([model.with_decoding(args.beam, args.length_penalty)] if args.beam > 1 else [])
  for corpus in corpora:
    for decoder in decodings:  # a separate back-translator decodes as the model does
      judge = reader.with_decoding(decoder.beams, decoder.length_penalty) if reader else None
      options = EvalOptions(limit=args.limit, corpus=corpus, protocol=args.metric_protocol, back_translator=judge,
                            evaluator=scorer, multimodality_samples=args.multimodality, temperature=args.temperature,
                            report=args.report)
      metrics = evaluate(decoder, model.config, args.workdir, args.split, options)
      if not metrics["examples"]:
        print_once(f"\n{corpus} {args.split}: no example with both poses and a sentence (nothing to translate)")
        break
      print_once(f"\n{corpus} ({args.split}, {decoder.decoding}):\n" + table(metrics))
      results = output_dir(model.config, args.workdir, args.split, corpus, decoding_tag(decoder))
      print_once(f"results: {results}/metrics.json (per example: {results}/examples.jsonl"
                 + (f"; to browse: {results}/report.html)" if args.report else ")"))
  return 0


def run_ablate(args) -> int:
  from asl_motiongpt.config_loader import load_config
  from asl_motiongpt.workflows.ablate import run_grid
  grid = load_config(args.config, args.overrides)
  _join_job()
  run_grid(grid, args.workdir)
  print_once(storage.read_text(storage.join(args.workdir, "results.md")))
  print_once(f"results: {storage.absolute(args.workdir)}/results.{{md,csv,png}}")
  return 0


def run_translate(args) -> int:
  from asl_motiongpt.eval.inference import ChainModel
  from asl_motiongpt.pose import read_pose
  if args.video:  # the poses first: a video that does not read fails before any model is loaded
    from asl_motiongpt.pose.video import video_to_poses
    poses = video_to_poses(storage.local_copy(args.video), refine_face=args.refine_face)
    print(poses.summary(args.video), file=sys.stderr)
    sequence = poses.sequence
  else:
    sequence = read_pose(storage.local_copy(args.pose))
  _join_job()
  model = ChainModel.load(args.workdir, args.stage, checkpoint=args.checkpoint).with_decoding(args.beam, args.length_penalty)
  print_once(model.sign_to_text([sequence])[0])
  return 0


def run_pose(args) -> int:
  from asl_motiongpt.pose.video import video_to_poses, write_video_poses
  if not args.out.endswith(".pose"):
    raise ValueError(f"--out {args.out}: write a .pose file")
  poses = video_to_poses(storage.local_copy(args.video), refine_face=args.refine_face,
                         model_complexity=args.model_complexity)
  with storage.local_file_for(args.out) as local:
    write_video_poses(poses, local)
  print(poses.summary(args.video))
  print(f"results: {args.out}")
  return 0


def run_generate(args) -> int:
  from asl_motiongpt.eval.inference import ChainModel
  unknown = [out for out in args.out if not out.endswith((".pose", ".mp4", ".gif", ".png"))]
  if unknown:  # before loading and generating anything
    raise ValueError(f"--out {unknown[0]}: write .pose, .mp4, .gif or .png")
  _join_job()
  model = ChainModel.load(args.workdir, args.stage, checkpoint=args.checkpoint).with_decoding(args.beam, args.length_penalty)
  seq = model.text_to_sign([args.text])[0]
  if seq is None:
    print(f"error: the model generated no motion codes for {args.text!r} (a failed generation); nothing written",
          file=sys.stderr)
    return 1
  from asl_motiongpt.parallel.sharding import written_once
  for out in args.out:
    written_once(lambda: _write_sign(seq, out), f"generate {out}")
    print_once(f"results: wrote {storage.absolute(out)} ({seq.num_frames} frames)")
  return 0


def _write_sign(seq, out: str) -> None:
  """A generated sign as .pose, .png (contact sheet) or .gif/.mp4, by the file's suffix."""
  from asl_motiongpt.pose import render
  from asl_motiongpt.pose.pose_io import write_generated_pose
  with storage.local_file_for(out) as local:  # a bucket path: written locally, then uploaded
    if out.endswith(".pose"):
      write_generated_pose(seq, local)
    elif out.endswith(".png"):
      render.contact_sheet(seq, local)
    else:
      render.write_animation(seq, local)


def _prepare_arguments(parser) -> None:
  parser.add_argument("--corpus", required=True, choices=corpora.CORPORA)
  parser.add_argument("--src", required=True, help="folder with the corpus files")
  parser.add_argument("--out", required=True, help="output folder (a TFDS data_dir)")
  parser.add_argument("--split", action="append", dest="splits",
                 help="split to prepare (repeatable; default: all of the corpus' splits)")
  parser.add_argument("--strict", action="store_true",
                 help="stop at the first bad record instead of skipping and counting it")
  parser.add_argument("--face", action="store_true", help="keep the 22-point face block")
  parser.add_argument("--dims", type=int, choices=(2, 3), help="pose dimensions to write")
  parser.add_argument("--fps", type=float, help="resample every sequence to this frame rate")
  parser.add_argument("--max-text-chars", type=int, default=1000)
  parser.add_argument("--world-landmarks", action="store_true",
                 help="MediaPipe Holistic files: the body from POSE_WORLD_LANDMARKS (metres, real depth) with the "
                 "hands and face hung on it; a file without them is skipped and counted")
  parser.add_argument("--min-visibility", type=float, default=0.5,
                 help="MediaPipe files: mask body points seen with a lower visibility (out of the image or "
                 "hidden; counted in the summary); 0 keeps every point (default: 0.5, MediaPipe's own threshold)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing prepared dataset")
  parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                 help="processes parsing OpenPose JSON frames (How2Sign; default: the cores, at most 8); "
                 "the prepared data is the same for any number")


def _sample_corpus_arguments(parser) -> None:
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--small", action="store_true", help="a few dozen sentences (for tests)")


def _demo_arguments(parser) -> None:
  parser.add_argument("--workdir", default="demo_workdir")
  parser.add_argument("--small", action="store_true", help="a few dozen sentences, short training, one LLM family "
                 "(what the tests run)")


def _convert_hf_arguments(parser) -> None:
  parser.add_argument("--hf-dir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--scan-layers", action="store_true", help="store layers stacked (for nn.scan)")


def _stage_of_a_chain(parser, required: bool = True) -> None:
  """--workdir, --stage, --checkpoint: which parameters of a trained chain (the same for every command)."""
  if required:
    parser.add_argument("--workdir", required=True, help="a trained chain")
  parser.add_argument("--stage", help="a stage of the chain (default: the last)")
  parser.add_argument("--checkpoint", default="last", help="of the stage: last, best (the best held-out evaluation, kept "
                 "with train.keep_best=1) or a step number")


def _decoding_arguments(parser) -> None:
  parser.add_argument("--beam", type=int, default=1, help="beam search with N beams (default 1: greedy); eval reports "
                 "greedy and beam N side by side")
  parser.add_argument("--length-penalty", type=float, default=1.0, help="beam search: scores / length ** A (GNMT style)")


def _export_hf_arguments(parser) -> None:
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", help="a trained chain (llm_align): its LLM with the motion tokens")
  source.add_argument("--llm-checkpoint", help="an LLM checkpoint written by convert-hf")
  _stage_of_a_chain(parser, required=False)
  parser.add_argument("--out", required=True)


def _train_arguments(parser) -> None:
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", help="where checkpoints, logs and summaries go (required unless --dry-run)")
  parser.add_argument("--dry-run", action="store_true", help="compile every stage for --topology and print memory "
                 "per device, parameters and FLOPs per step; reads no data or weights (llm.hf_dir: config.json)")
  parser.add_argument("--topology", default="devices", help="with --dry-run: devices (this machine's), cpu:N, or "
                 "tpu:<TPU type> such as tpu:v5p-64, tpu:v5e-16, tpu:v5e-16x2 or libtpu's tpu:v5e:4x4 "
                 "(needs the [tpu] extra)")
  parser.add_argument("--device-memory-gib", type=float, help="with --dry-run: say whether each stage fits "
                 "(a TPU type's own memory by default)")
  parser.add_argument("--plan-out", help="with --dry-run: also write the table as JSON to this file")
  parser.add_argument("--fit", action="store_true", help="with --dry-run: search the memory knobs (FSDP over every "
                      "device, chunked loss, scanned layers, accumulation, remat) cheapest first and print the "
                      "overrides under which every stage fits the device memory")


def _eval_arguments(parser) -> None:
  _stage_of_a_chain(parser)
  parser.add_argument("--split", default="test")
  parser.add_argument("--limit", type=int, help="evaluate the first N examples only (of each corpus)")
  parser.add_argument("--corpus", help="one corpus of the chain (default: each corpus it trained on, reported apart)")
  parser.add_argument("--back-translator", help="workdir of another trained chain that reads the generated signs back "
                 "(default: the evaluated model itself)")
  parser.add_argument("--evaluator", help="workdir of a trained text-motion evaluator (configs/evaluator.py): "
                 "scores the generated signs by FID, R-precision, matching distance and diversity")
  parser.add_argument("--multimodality", type=int, default=0, metavar="K",
                 help="with --evaluator: K >= 2 signs sampled per text (first 32 texts) at --temperature, scored by "
                 "multimodality (their mean pairwise distance)")
  parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for --multimodality")
  parser.add_argument("--report", action="store_true", help="also write report.html: the metrics and every example "
                 "(texts, WERs, the reference and generated signs playing side by side), sortable, opens from disk")
  parser.add_argument("--metric-protocol", default="slt", choices=["slt", "sacrebleu"],
                 help="slt: lowercased, punctuation removed, whitespace tokens (PHOENIX-2014T papers); sacrebleu: "
                 "BLEU with sacrebleu's defaults (13a, case kept), as How2Sign papers report it")
  _decoding_arguments(parser)


def _translate_arguments(parser) -> None:
  _stage_of_a_chain(parser)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--pose", help="a .pose file (any layout docs/DESIGN.md lists)")
  source.add_argument("--video", help="a video of one signer (MediaPipe Holistic; the [video] extra)")
  parser.add_argument("--refine-face", action="store_true", help="with --video: 478 face points (with irises), not 468")
  _decoding_arguments(parser)


def _pose_arguments(parser) -> None:
  parser.add_argument("--video", required=True)
  parser.add_argument("--out", required=True, help="the .pose file to write")
  parser.add_argument("--model-complexity", type=int, default=1, help="MediaPipe's model (only 1 runs offline)")
  parser.add_argument("--refine-face", action="store_true", help="478 face points (with irises) instead of 468")


def _generate_arguments(parser) -> None:
  _stage_of_a_chain(parser)
  parser.add_argument("--text", required=True)
  parser.add_argument("--out", action="append", required=True, help="output file (repeatable): .pose, .mp4, .gif, .png")
  _decoding_arguments(parser)


def _ablate_arguments(parser) -> None:
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True)


@dataclasses.dataclass(frozen=True)
class Command:
  name: str
  help: str
  arguments: Callable[[argparse.ArgumentParser], None]
  run: Callable[[argparse.Namespace], int]
  compiles: bool = False    # compiles XLA programs: the persistent compilation cache is switched on
  overrides: bool = False   # takes --config.key=value (set on args.overrides)


COMMANDS = (
    Command("sample-corpus", "write the embedded sample corpus (How2Sign, PHOENIX-2014T, Ham2Pose formats)",
            _sample_corpus_arguments, run_sample_corpus),
    Command("prepare", "read a corpus, map to the unified skeleton, normalise, write ArrayRecord splits",
            _prepare_arguments, run_prepare),
    Command("pose", "a video -> a .pose file (MediaPipe Holistic through pose-format; the [video] extra)",
            _pose_arguments, run_pose),
    Command("demo", "sample corpus -> prepare -> tokenizer -> two tiny chains -> evaluation table and pictures",
            _demo_arguments, run_demo, compiles=True),
    Command("convert-hf", "Hugging Face LLaMA/Qwen folder (safetensors) -> our checkpoint (Orbax + llm_config.json)",
            _convert_hf_arguments, run_convert_hf, compiles=True),
    Command("export-hf", "a trained llm_align chain (with its motion tokens), or our LLM checkpoint -> Hugging Face "
            "folder", _export_hf_arguments, run_export_hf, compiles=True),
    Command("train", "run a chain config: the tokenizer stage, then a pretraining strategy's LLM stages",
            _train_arguments, run_train, compiles=True, overrides=True),
    Command("eval", "a trained chain on a split: sign -> text metrics, text -> sign DTW-MJE, back-translation",
            _eval_arguments, run_eval, compiles=True),
    Command("translate", "sign -> text for one .pose file or video", _translate_arguments, run_translate,
            compiles=True),
    Command("generate", "text -> sign: .pose / .mp4 / .gif / .png", _generate_arguments, run_generate, compiles=True),
    Command("ablate", "a grid of strategies x combinations x LLM families -> results.md / .csv / .png",
            _ablate_arguments, run_ablate, compiles=True, overrides=True),
)


def _parser() -> argparse.ArgumentParser:
  lines = [f"  {c.name:14s} {c.help}" for c in COMMANDS]
  parser = argparse.ArgumentParser(prog="asl-motiongpt", description="commands:\n" + "\n".join(lines),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  for command in COMMANDS:
    command.arguments(sub.add_parser(command.name, help=command.help))
  return parser


def main(argv=None) -> int:
  parser = _parser()
  args, rest = parser.parse_known_args(argv)
  command = next(c for c in COMMANDS if c.name == args.command)
  args.overrides = [r for r in rest if r.startswith("--config.")]
  unknown = [r for r in rest if not r.startswith("--config.")]
  if unknown or (args.overrides and not command.overrides):
    parser.error(f"unrecognised arguments: {' '.join(unknown or args.overrides)}")
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS' notices about custom configs are noise here
  if command.compiles and not getattr(args, "dry_run", False):  # dry runs compile for planned devices
    from asl_motiongpt.parallel.runtime import enable_compile_cache
    enable_compile_cache()  # the commands that run as one job of several processes also join it (_join_job)
  try:
    return command.run(args)
  except (corpora.CorpusError, FileNotFoundError, FileExistsError, ValueError, storage.StorageError,
          VideoExtraMissing) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
