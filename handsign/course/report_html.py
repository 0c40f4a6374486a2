"""report.json -> one self-contained HTML page (inline CSS, relative PNGs, no scripts, no network).

Every number on the page is a value of the JSON document printed as it is stored (percentages are
stored rounded to 2 decimals and printed with 2), so the page can be checked against the JSON.
"""

from __future__ import annotations

import json
from html import escape

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --bg: #f6f7fb; --card: #fff; --accent: #3457d5; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 60px; }
header.top { background: linear-gradient(120deg, #233a8b, #3457d5); color: #fff; padding: 28px 20px; }
header.top div { max-width: 1080px; margin: 0 auto; }
header.top h1 { margin: 0 0 6px; font-size: 1.75rem; }
header.top p { margin: 2px 0; opacity: .9; }
nav { margin: 16px 0 8px; display: flex; flex-wrap: wrap; gap: 8px; }
nav a { background: var(--card); border: 1px solid var(--line); border-radius: 16px; padding: 3px 12px;
        text-decoration: none; color: var(--accent); font-size: .9rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px;
          margin: 20px 0; }
h2 { margin: 0 0 6px; font-size: 1.35rem; }
h2 small { color: var(--muted); font-weight: normal; font-size: .95rem; }
h3 { margin: 20px 0 8px; font-size: 1.05rem; }
p.lead { color: var(--muted); margin-top: 0; }
.quick { background: #fff4d6; border: 1px solid #f0c94a; color: #6b4e00; border-radius: 6px; padding: 6px 12px;
         font-weight: 600; margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: .93rem; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f7; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } }
img.fig { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.verdict { border-left: 5px solid #888; background: #f4f5f8; padding: 10px 14px; border-radius: 4px; margin: 10px 0; }
table.acc th .src { font-weight: normal; }
.v-good-fit { border-color: #2e9d5b; background: #ecf8f0; }
.v-overfitting { border-color: #e08a1e; background: #fdf3e6; }
.v-underfitting { border-color: #3f7fd1; background: #eaf2fc; }
.v-unstable { border-color: #d23f3f; background: #fbecec; }
.v-needs-data { border-color: #8a6d00; background: #fff8e0; }
.lesson-yes { color: #2e7d32; font-weight: 600; }
.lesson-no { color: #c62828; font-weight: 600; }
.compare { color: var(--muted); font-style: italic; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; padding: 0; list-style: none; }
.chips li { background: #fff; border: 1px solid var(--line); border-radius: 14px; padding: 2px 10px; font-size: .88rem; }
.chips li.low { border-color: #e08a1e; background: #fdf3e6; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
.card .pics { display: flex; gap: 8px; align-items: flex-end; }
.card .pics img { border: 1px solid var(--line); border-radius: 4px; width: 120px; height: auto; }
.card .pics img.seen { width: 84px; image-rendering: pixelated; }
.card .pics figure { margin: 0; font-size: .75rem; color: var(--muted); text-align: center; }
.card .pred { font-size: 1.1rem; margin: 6px 0 2px; }
.card .pred b { font-size: 1.6rem; }
.ok { color: #2e7d32; font-weight: 600; }
.bad { color: #c62828; font-weight: 600; }
.bar { height: 8px; background: #e6e9f0; border-radius: 4px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); }
.src { font-size: .78rem; color: var(--muted); }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
dl.diff { margin: 0; }
.diff-item { border-top: 1px solid var(--line); padding: 10px 0; }
.diff-item h3 { margin: 0 0 4px; }
.diff-item p { margin: 3px 0; display: grid; grid-template-columns: 92px 1fr; }
.tag { font-weight: 600; color: var(--muted); }
footer { color: var(--muted); font-size: .85rem; text-align: center; }
"""


def _e(v) -> str:
    return escape("" if v is None else str(v))


def _percent_text(v) -> str:
    """A stored percentage (2 decimals) as shown: '97.84 %'; '-' when absent."""
    return "-" if v is None else f"{v:.2f} %"


def _quick(doc) -> str:
    return f'<p class="quick">{_e(doc["quick_banner"])}</p>' if doc["quick"] else ""


def _img(src, alt, cls="fig", extra="") -> str:
    return f'<img class="{cls}" src="{_e(src)}" alt="{_e(alt)}"{extra}>'


def _config_table(cfg: dict) -> str:
    keys = ["dataset", "model", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment",
            "augment_per_batch", "valid_fraction", "valid_from_test", "limit", "seed"]
    chips = "".join(f"<li>{_e(k)} = <b>{_e(json.dumps(cfg[k]))}</b></li>" for k in keys if k in cfg)
    full = "".join(f"<tr><th>{_e(k)}</th><td>{_e(json.dumps(v))}</td></tr>" for k, v in cfg.items())
    return (f'<ul class="chips">{chips}</ul><details><summary>all settings</summary><table>{full}</table>'
            f"</details>")


def _accuracy_table(s: dict) -> str:
    a, last, sizes = s["accuracy"], s["last"], s["sizes"]
    course = s.get("course") or {}

    def course_cell(key):
        r = course.get(key)
        if not r:
            return "-"
        return f"about {r[0]:g} %" if r[0] == r[1] else f"{r[0]:g}-{r[1]:g} %"  # as the course wrote them

    rows = [
        ("train", "images the model learned from", a["train"], last["train"], sizes["train"], course_cell("train")),
        ("valid", "carved from the training file; picks the best epoch", a["valid"], last["valid"],
         sizes["valid"], "-"),
        ("test", "the separate test file, used once at the end", a["test"], last["test"], sizes["test"],
         course_cell("valid") + " (their &lsquo;validation&rsquo; = the test file)" if course else "-"),
    ]
    body = "".join(f'<tr><th>{name}<div class="src">{why}</div></th><td class="n">{_e(n)}</td>'
                   f'<td class="n">{_percent_text(b)}</td><td class="n">{_percent_text(lst)}</td><td>{c}</td></tr>'
                   for name, why, b, lst, n, c in rows)
    return (f'<table class="acc"><tr><th>split</th><th class="n">images</th>'
            f'<th class="n">best epoch ({_e(s["best_epoch"])})</th><th class="n">last epoch ({_e(last["epoch"])})</th>'
            f"<th>course published</th></tr>{body}</table>")


def _history(s: dict) -> str:
    rows = "".join(f'<tr><td class="n">{h["epoch"]}</td><td class="n">{_percent_text(h["train"])}</td>'
                   f'<td class="n">{_percent_text(h["valid"])}</td><td class="n">{h["train_loss"]:.4f}</td>'
                   f'<td class="n">{h["valid_loss"]:.4f}</td></tr>' for h in s["history"])
    return (f'<details><summary>numbers per epoch</summary><table><tr><th class="n">epoch</th>'
            f'<th class="n">train acc</th><th class="n">valid acc</th><th class="n">train loss</th>'
            f'<th class="n">valid loss</th></tr>{rows}</table></details>')


def _asl_parts(s: dict) -> str:
    if "confusion" not in s["images"]:
        return ""
    pairs = "".join(f"<li><b>{_e(p['pair'][0])}</b> &harr; <b>{_e(p['pair'][1])}</b>: {_e(p['count'])} "
                    f"test images</li>" for p in s["most_confused"][:6]) or "<li>no mistakes at all</li>"
    ranked = sorted(s["per_class"].items(), key=lambda kv: (kv[1] is None, kv[1]))
    low = {k for k, _ in ranked[:3]}
    chips = "".join(f'<li class="{"low" if k in low else ""}"><b>{_e(k)}</b> {_percent_text(v)}</li>'
                    for k, v in s["per_class"].items())
    out = (f'<h3>Where it goes wrong (test file)</h3><div class="grid2"><div>'
           f'{_img(s["images"]["confusion"], "confusion matrix")}'
           f'<p class="src">Rows: the true letter; columns: the predicted one. Red numbers count mistakes.</p>'
           f'</div><div><p>Most confused letter pairs (both directions):</p><ul>{pairs}</ul>'
           f'<p>Accuracy per letter (the three weakest highlighted):</p><ul class="chips">{chips}</ul></div></div>')
    if "mistakes" in s["images"]:
        out += (f'<h3>The most confident mistakes</h3>'
                f'<p class="lead">Test images the model got wrong while being most sure of itself, captioned '
                f'true&rarr;predicted and the probability it gave its wrong answer. Looking at them shows whether '
                f'the mistakes are understandable (similar hand shapes) or a sign of a problem.</p>'
                f'{_img(s["images"]["mistakes"], "most confident mistakes")}')
    return out


def _needs_data(s: dict, doc: dict, number) -> str:
    n = s["needs_data"]
    return f"""
<section id="stage-{number}">{_quick(doc)}
<h2>Stage {number}: {_e(s['title'])} <small>recipe <code>{_e(s['recipe'])}</code></small></h2>
<p class="lead">{_e(s['intro'])}</p>
<div class="verdict v-needs-data"><b>Needs data: {_e(n['title'])}.</b> It is looked for in <code>{_e(n['where'])}</code>
(<code>--data-dir</code>, else <code>$HANDSIGN_DATA</code>, else <code>./data</code>), which lacks
{_e(', '.join(n['lacking']))}. Get it: <code>{_e(n['how'])}</code>; <code>handsign data</code> shows every data set.
Then run this command again.</div>
</section>"""


def _stage(s: dict, doc: dict) -> str:
    if "needs_data" in s:
        return _needs_data(s, doc, s["number"])
    d = s["diagnosis"]
    aug = ""
    if "augment" in s["images"]:
        aug = (f'<h3>What augmentation does to a training image</h3><p class="lead">Each row: one training image, '
               f'then augmented copies of it as the model sees them during training.</p>'
               f'{_img(s["images"]["augment"], "augmentation preview")}')
    compare = f'<p class="compare">{_e(s["comparison"])}</p>' if s.get("comparison") else ""
    return f"""
<section id="stage-{s['number']}">{_quick(doc)}
<h2>Stage {s['number']}: {_e(s['title'])} <small>recipe <code>{_e(s['recipe'])}</code></small></h2>
<p class="lead">{_e(s['intro'])}</p>
<p>{_e(s['description'])}. The model has {s['parameters']:,} parameters; {s['epochs_run']} epochs took
{s['seconds']:.1f} s.</p>
<h3>Accuracy</h3>{_accuracy_table(s)}{compare}
<h3>Settings</h3>{_config_table(s['config'])}
<h3>Learning curves</h3>{_img(s['images']['curves'], 'learning curves')}{_history(s)}
<div class="verdict v-{_e(d.get('verdict'))}"><b>Diagnosis (of the last epoch, {_e(s['last']['epoch'])}; the
best epoch's numbers are in the first column above).</b> {_e(d.get('text'))}</div>
{_asl_parts(s)}{aug}
</section>"""


def _deploy(dep: dict, doc: dict) -> str:
    cards = []
    for p in dep["predictions"]:
        verdict = ""
        if p["true"] is not None:
            verdict = (f'<span class="ok">correct</span>' if p["correct"]
                       else f'<span class="bad">wrong, the true letter is {_e(p["true"])}</span>')
        bars = "".join(f'<tr><td><b>{_e(t["label"])}</b></td><td class="n">{_percent_text(t["probability"])}</td>'
                       f'<td style="width:55%"><div class="bar"><span style="width:{t["probability"]}%"></span>'
                       f"</div></td></tr>" for t in p["top"])
        cards.append(f'<div class="card"><div class="pics"><figure>{_img(p["image"], "input image", "", "")}'
                     f'<figcaption>the image</figcaption></figure><figure>'
                     f'{_img(p["model_input"], "what the model sees", "seen", "")}<figcaption>what the model sees'
                     f'</figcaption></figure></div><p class="pred">predicted <b>{_e(p["label"])}</b> {verdict}</p>'
                     f'<table>{bars}</table><p class="src">{_e(p["source"])}</p></div>')
    which = f"bundled {_e(dep['bundled'])}" if dep.get("bundled") else "stage-4"  # bundled: no data to train on
    labels = "digits" if dep.get("bundled") == "mnist" else "letters"
    if dep["source"] == "made":
        where = ("There is no data set here to train a model on or to take test pictures from, so the bundled "
                 "digit model (<code>handsign/bundled/mnist</code>) was asked about digits drawn here. "
                 f"It got {dep['n_correct']} of {dep['n_known']} right. (The bundled ASL letter model needs "
                 "pictures of hands: try <code>handsign predict your-photo.jpg</code> or <code>handsign serve</code>.)")
    elif dep.get("bundled"):
        where = ("These are the images given with <code>--images</code>, asked of the bundled ASL model (no data "
                 "set here to train the stage-4 model); their true letters are not known.")
    elif dep["source"] == "rendered":
        where = ("No images were given (<code>--images</code>), so these were rendered from the Sign-MNIST test "
                 "file and enlarged to the size of the course's photos. "
                 f"The model got {dep['n_correct']} of {dep['n_known']} right.")
    else:
        where = "These are the images given with <code>--images</code>; their true letters are not known."
    return f"""
<section id="stage-{dep['number']}">{_quick(doc)}
<h2>Stage {dep['number']}: Deploying the model on new images <small>model <code>{_e(dep['model'])}</code></small></h2>
<p class="lead">The course ends by loading the saved model and asking it about new pictures. Here the {which}
model is loaded from its file with <code>handsign.infer.predict.Predictor</code>, each image goes through the same
preprocessing as the training data, and the model answers with its top-{dep['top_k']} {labels}. {where}</p>
<div class="cards">{''.join(cards)}</div>
{_real_photos(dep.get("real"))}
</section>"""


def _real_photos(real: dict | None) -> str:
    """Stage 5, part 2: the course CNN and the landmark route on real photos of an unseen person."""
    if not real:
        return ""
    if "skipped" in real:
        return f'<h3>Real photos</h3><p class="lead">Not run: {_e(real["skipped"])}.</p>'
    cards = []
    for r in real["rows"]:
        ok = lambda got: '<span class="ok">right</span>' if got == r["letter"] else '<span class="bad">wrong</span>'
        hp = f' {_percent_text(100 * r["landmarks_probability"])}' if r["landmarks_probability"] is not None else ""
        cards.append(f'<div class="card"><figure>{_img(r["image"], "photo of " + r["letter"], "", "")}'
                     f'<figcaption>the letter <b>{_e(r["letter"])}</b></figcaption></figure>'
                     f'<p class="pred">course CNN: <b>{_e(r["course"])}</b> {ok(r["course"])}</p>'
                     f'<p class="pred">landmarks: <b>{_e(r["landmarks"])}</b>{hp} {ok(r["landmarks"])}</p></div>')
    return f"""
<h3>Real photos of a person neither model has seen</h3>
<p class="lead">One photo per letter of <b>{_e(real['holdout'])}</b> from the Massey ASL photos. The course CNN
(the stage-4 model above) read <b>{real['course_correct']} of {real['n']}</b>; a landmark model that handsign
trained on the other four people's photos (<code>{_e(real['landmark_model'])}</code>) read
<b>{real['landmarks_correct']} of {real['n']}</b>. The green lines are the hand MediaPipe found.</p>
<p>{_e(real['why'])}</p>
<div class="cards">{''.join(cards)}</div>"""


def _fast(doc: dict) -> str:
    f = doc["fast"]
    course = next(s for s in doc["stages"] if s["recipe"] == f["course_recipe"])
    ran = [s for s in [course] + f["recipes"] if "needs_data" not in s]
    skipped = "".join(f'<div class="verdict v-needs-data"><code>{_e(s["recipe"])}</code>: {_e(s["needs_data"]["text"])}'
                      f'</div>' for s in [course] + f["recipes"] if "needs_data" in s)
    if not f["recipes"]:
        body = f"<p>{_e(f['note'])}</p>"
    elif not ran:
        body = skipped
    else:
        rows = [(f"course figure ({_e(f['course']['text'])})", "-", "-", None, None, "-", None)]
        for s in ran:
            a = s["accuracy"]
            rows.append((f"<code>{_e(s['recipe'])}</code> &mdash; {_e(s['description'])}", s["epochs_run"],
                         f"{s['seconds']:.1f}", a["train"], a["valid"], s["parameters"], a["test"]))
        trs = "".join(f'<tr><td>{r[0]}</td><td class="n">{r[1]}</td><td class="n">{r[2]}</td>'
                      f'<td class="n">{_percent_text(r[3])}</td><td class="n">{_percent_text(r[4])}</td>'
                      f'<td class="n">{r[5] if isinstance(r[5], str) else format(r[5], ",")}</td>'
                      f'<td class="n">{_percent_text(r[6])}</td></tr>' for r in rows)
        body = (f'<table><tr><th>recipe</th><th class="n">epochs</th><th class="n">seconds</th>'
                f'<th class="n">train</th><th class="n">valid</th><th class="n">parameters</th>'
                f'<th class="n">test</th></tr>{trs}</table>'
                + "".join(f'<div class="verdict v-{_e(s["diagnosis"].get("verdict"))}"><code>{_e(s["recipe"])}'
                          f'</code>: {_e(s["diagnosis"].get("text"))}</div>' for s in f["recipes"]
                          if "needs_data" not in s) + skipped)
    return f"""
<section id="fast">{_quick(doc)}
<h2>handsign's fast recipes next to the course</h2>
<p class="lead">Recipes named <code>fast-*</code> aim at the course's final accuracy in a fraction of the time.
Their test accuracy is the number to compare with the course's figure.</p>{body}
</section>"""


def _summary_row(s: dict) -> str:
    if "needs_data" in s:
        return (f'<tr><td><a href="#stage-{s["number"]}">{s["number"]}</a></td><td>{_e(s["title"])}</td>'
                f'<td colspan="3">needs data: {_e(s["needs_data"]["title"])}</td><td>{_e(s["course"]["text"])}</td>'
                f'<td><span class="verdict v-needs-data" style="padding:1px 6px;margin:0">needs data</span></td></tr>')
    return (
        f'<tr><td><a href="#stage-{s["number"]}">{s["number"]}</a></td><td>{_e(s["title"])}</td>'
        f'<td class="n">{_percent_text(s["accuracy"]["train"])}</td><td class="n">{_percent_text(s["accuracy"]["valid"])}</td>'
        f'<td class="n"><b>{_percent_text(s["accuracy"]["test"])}</b></td><td>{_e(s["course"]["text"])}</td>'
        f'<td><span class="verdict v-{_e(s["diagnosis"].get("verdict"))}" style="padding:1px 6px;margin:0">'
        f'{_e(s["diagnosis"].get("verdict"))}</span></td></tr>')


def _lessons(doc: dict) -> str:
    if not doc.get("lessons"):
        return ""
    mark = {True: '<span class="lesson-yes">shows</span>', False: '<span class="lesson-no">does not show</span>',
            None: "not checked"}
    rows = "".join(f'<tr><td style="width:30%">{_e(x["lesson"])}</td><td>{mark[x["holds"]]}</td><td>{_e(x["numbers"] or "-")}'
                   f'</td><td>{_e(x["note"])}</td></tr>' for x in doc["lessons"])
    return (f'<h3>The course\'s lessons, checked on this run</h3><table><tr><th>lesson</th><th>here</th>'
            f'<th>numbers (test file)</th><th>note</th></tr>{rows}</table>')


def _summary(doc: dict) -> str:
    rows = "".join(_summary_row(s) for s in doc["stages"])
    needs = ""
    if doc.get("needs_data"):
        needs = ('<div class="verdict v-needs-data"><b>Some stages need data that is not here.</b><ul>'
                 + "".join(f"<li><b>{_e(n['title'])}</b>: <code>{_e(n['where'])}</code> lacks "
                           f"{_e(', '.join(n['lacking']))}; get it: <code>{_e(n['how'])}</code></li>"
                           for n in doc["needs_data"])
                 + "</ul><code>handsign data</code> shows every data set; <code>handsign data fetch</code> gets "
                   "them.</div>")
    return f"""
<section id="summary">{_quick(doc)}
<h2>Summary</h2>
<p class="lead">Accuracy of each stage's best epoch (best on the validation split: the model that is kept);
the diagnosis looks at the last epoch, and each stage below shows both. The test column is measured on data the model never saw
during training and that was never used to choose anything: compare it with the course's figure.</p>
<table><tr><th>stage</th><th>what</th><th class="n">train</th><th class="n">valid</th><th class="n">test</th>
<th>course published</th><th>diagnosis</th></tr>{rows}</table>{needs}{_lessons(doc)}
</section>"""


def _differences(doc: dict) -> str:
    items = "".join(f'<div class="diff-item"><h3>{_e(d["topic"])}</h3>'
                    f'<p><span class="tag">course</span>{_e(d["course"])}</p>'
                    f'<p><span class="tag">handsign</span>{_e(d["handsign"])}</p>'
                    f'<p><span class="tag">why</span>{_e(d["why"])}</p></div>' for d in doc["differences"])
    return f"""
<section id="differences">{_quick(doc)}
<h2>What handsign does differently from the course, and why</h2>{items}
</section>"""


def render(doc: dict) -> str:
    """The whole page for a report document (see handsign.course.reproduce.reproduce)."""
    m = doc["machine"]
    nav = "".join(f'<a href="#{i}">{_e(t)}</a>' for i, t in
                  [("summary", "Summary"), ("differences", "Differences")]
                  + [(f"stage-{s['number']}", f"Stage {s['number']}") for s in doc["stages"]]
                  + [(f"stage-{doc['deploy']['number']}", f"Stage {doc['deploy']['number']}"), ("fast", "Fast")])
    body = (_summary(doc) + _differences(doc) + "".join(_stage(s, doc) for s in doc["stages"])
            + _deploy(doc["deploy"], doc) + _fast(doc))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(doc['title'])}</title>
<style>{CSS}</style></head>
<body>
<header class="top"><div><h1>{_e(doc['title'])}</h1>
<p>The five stages of the course, run with handsign {_e(m['handsign'])} on {_e(m['device'])}
({_e(m['cpu_threads'])} CPU threads, torch {_e(m['torch'])}, Python {_e(m['python'])}), seed {_e(doc['seed'])},
in {doc['wall_seconds']:.1f} s. Created {_e(doc['created'])}.</p></div></header>
<main>{_quick(doc)}<nav>{nav}</nav>{body}
<footer>Every number on this page is read from report.json in the same folder.</footer>
</main></body></html>
"""
