"""`eval --report`: one HTML page per evaluation, to browse before trusting a BLEU.

    <eval dir>/report.html          the page: no server, no network, opens from disk
    <eval dir>/report_media/<n>.gif  per example, the reference sign and the generated one side by side

The page holds the metrics table with its protocol line, then every example: its reference text,
the sign -> text hypothesis with its WER, the back-translation of the generated sign with its WER,
DTW-MJE, lengths, and the two signs playing on one time axis (render.pair_frames). Failed
generations (no motion code) are listed at the top and marked in the table. Clicking a column
header sorts by it; the page opens sorted worst first by sign -> text WER.
"""
from __future__ import annotations

import html
import os
import tempfile

from tqdm import tqdm

from asl_motiongpt import storage
from asl_motiongpt.metrics.text_metrics import sentence_wer
from asl_motiongpt.pose import render

MEDIA = "report_media"
GIF_SIZE = 160  # signer panel height: a pair is 480 x 160 pixels, hands readable in their insets
GIF_FPS = 12.5  # at most: every other frame of a 25 fps sign (half the drawing; motion still reads)

# Sorting by a column: numbers as numbers, empty cells last; the first click sorts descending.
_SORT_SCRIPT = """
function sortBy(column) {
  const table = document.getElementById("examples");
  const rows = Array.from(table.tBodies[0].rows);
  const header = table.tHead.rows[0].cells[column];
  const descending = header.dataset.order !== "desc";
  for (const cell of table.tHead.rows[0].cells) { delete cell.dataset.order; }
  header.dataset.order = descending ? "desc" : "asc";
  const key = row => {
    const value = row.cells[column].dataset.value;
    if (value === undefined || value === "") return null;
    const number = Number(value);
    return Number.isNaN(number) ? value : number;
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null) return 1;
    if (y === null) return -1;
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  for (const row of rows) table.tBodies[0].appendChild(row);
}
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; }
th { background: #f0f0f0; }
#examples th { cursor: pointer; }
#examples th[data-order="desc"]::after { content: " \\25BC"; }
#examples th[data-order="asc"]::after { content: " \\25B2"; }
td.text { min-width: 9em; max-width: 22em; }
td.id { min-width: 8em; max-width: 11em; word-break: break-all; font-size: 0.85em; color: #555; }
td.sign { min-width: 480px; }
tr.failed { background: #fff0f0; }
.protocol { color: #666; font-size: 0.9em; }
"""

COLUMNS = ("id", "reference", "sign -> text", "WER", "back-translation", "back WER", "DTW-MJE",
           "frames generated / reference", "signs (reference | generated)")


def _cell(value, sort_value=None, css: str = "") -> str:
  shown = "" if value is None else html.escape(str(value))
  key = "" if sort_value is None else html.escape(str(sort_value))
  return f'<td{f" class={css!r}" if css else ""} data-value="{key}">{shown}</td>'


def _number(value, digits: int = 2):
  return (None, None) if value is None else (f"{value:.{digits}f}", round(float(value), 6))


def _metrics_table(metrics: dict) -> str:
  sign_to_text, text_to_sign = metrics["sign_to_text"], metrics["text_to_sign"]
  rows = [("sign -> text", sign_to_text), ("back-translation", text_to_sign["back_translation"])]
  head = "".join(f"<th>{name}</th>" for name in ("direction", "BLEU@1", "BLEU@4", "ROUGE-L", "CIDEr", "WER",
                                                 "substitutions", "deletions", "insertions"))
  body = "".join(
      f"<tr><td>{name}</td><td>{scores['bleu1']:.2f}</td><td>{scores['bleu4']:.2f}</td><td>{scores['rouge_l']:.2f}"
      f"</td><td>{scores['cider']:.3f}</td><td>{scores['wer']:.2f}</td><td>{scores['substitutions']}</td>"
      f"<td>{scores['deletions']}</td><td>{scores['insertions']}</td></tr>" for name, scores in rows)
  fmt = lambda v, spec: "—" if v is None else format(v, spec)
  pose = (f"text -> sign: DTW-MJE {fmt(text_to_sign['dtw_mje'], '.3f')}, hands "
          f"{fmt(text_to_sign['dtw_mje_hands'], '.3f')} (shoulder widths); generated length "
          f"{fmt(text_to_sign['length_ratio'], '.2f')} x the reference; failed generations "
          f"{text_to_sign['failed_generations']}, cut at the limit {text_to_sign['unfinished_generations']}")
  protocol = (f"text metrics: protocol {sign_to_text.get('protocol', 'slt')} (BLEU: sacrebleu "
              f"{sign_to_text.get('bleu_signature', '')}); decoding {metrics.get('decoding', '')}; back-translator "
              f"{text_to_sign.get('back_translator', 'self')}")
  return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{html.escape(pose)}</p>"
          f'<p class="protocol">{html.escape(protocol)}</p>')


def write_report(out: str, examples, decoded, metrics: dict, dtw: list, protocol: str = "slt") -> str:
  """report.html and report_media/ in `out` (a local folder or a bucket path); returns the page's path."""
  scores = iter(dtw)
  rows, failed = [], []
  with tempfile.TemporaryDirectory(prefix="asl-report-") as local:
    os.makedirs(os.path.join(local, MEDIA))
    items = list(zip(examples.ids, examples.references, examples.poses, decoded.sign_to_text,
                     decoded.back_translation, decoded.text_to_sign))
    for number, (example_id, reference, pose, hypothesis, back, generated) in enumerate(
        tqdm(items, desc="report: drawing the signs")):
      wer_value = sentence_wer(hypothesis, reference, protocol)
      cells = [_cell(example_id, example_id, "id"), _cell(reference, reference, "text"),
               _cell(hypothesis, hypothesis, "text"), _cell(*_number(wer_value, 1))]
      if generated is None:
        failed.append(example_id)
        cells += [_cell("(no sign generated)", "", "text"), _cell(None), _cell(None),
                  _cell(f"0 / {pose.num_frames}", 0), _cell("generation failed: no motion code")]
      else:
        media = f"{MEDIA}/{number}.gif"
        render.write_animation(generated, os.path.join(local, media), size=GIF_SIZE, reference=pose, max_fps=GIF_FPS)
        cells += [_cell(back, back, "text"), _cell(*_number(sentence_wer(back, reference, protocol), 1)),
                  _cell(*_number(next(scores), 3)),
                  _cell(f"{generated.num_frames} / {pose.num_frames}", generated.num_frames / max(pose.num_frames, 1)),
                  f'<td class="sign"><img src="{media}" alt="reference and generated sign of {html.escape(example_id)}" '
                  f'loading="lazy"></td>']
      rows.append(f'<tr data-id="{html.escape(example_id)}"{" class=failed" if generated is None else ""}>'
                  + "".join(cells) + "</tr>")
    header = "".join(f'<th onclick="sortBy({index})">{html.escape(name)}</th>' for index, name in enumerate(COLUMNS))
    failures = (f"<p><b>{len(failed)} failed generations</b> (no motion code; not scored as signs): "
                f"{html.escape(', '.join(failed))}</p>" if failed else "<p>No failed generation.</p>")
    title = f"{metrics.get('corpus', '')} {metrics['split']}: {metrics['examples']} examples"
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style><script>{_SORT_SCRIPT}</script></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{_metrics_table(metrics)}\n{failures}\n"
            "<p>Click a column to sort by it (worst sign -> text WER first to begin with). Signs: the reference "
            "on the left, the generated one on the right, on one time axis; each hand enlarged beside its "
            "signer, one colour per finger (thumb red, index orange, middle green, ring blue, little purple).</p>\n"
            f'<table id="examples"><thead><tr>{header}</tr></thead>\n<tbody>\n' + "\n".join(rows) +
            "\n</tbody></table>\n<script>sortBy(3);</script>\n</body></html>\n")
    with open(os.path.join(local, "report.html"), "w", encoding="utf-8") as page_file:
      page_file.write(page)
    storage.upload(local, out)
  return storage.join(out, "report.html")
