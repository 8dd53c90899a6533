"""The light CLIP tokenizer (modules/clip_tokenizer) gives exactly what transformers' CLIPTokenizer gives, for every
call form the engine and extensions use, over a fuzz corpus of prompts; anything else is answered by transformers'
own tokenizer, loaded on first use. (That loading a model no longer imports transformers at all is checked by
tests/test_clip_text_model.py's subprocess test.)"""
import copy
import json
import pickle
import random
import threading

import pytest
import torch

from modules import transformers_compat
from modules.clip_tokenizer import TOKENIZER_DIR, load_clip_tokenizer
from modules.clip_tokenizer.light_tokenizer import LightCLIPTokenizer

# A1111 prompt syntax, punctuation runs, numbers, case, scripts, emoji, Unicode normalisation and whitespace cases
FRAGMENTS = [
    "(word:1.2)", "((masterpiece))", "[a:b:0.5]", "[cat|dog]", "[[low]]", "{red|green|blue}", "<lora:x:1>",
    "<lora:some_LoRA-v2.1:0.75>", "<hypernet:foo:0.8>", "easynegative", "bad-hands-5", "ng_deepnegative_v1_75t",
    "BREAK", "AND", ",", ",,", ", ,", "...", "!!!", "?!", "--", "((()))", "__wildcard__", ":", ";", "|", "\\(", "\\)",
    "123", "1.5", "3.14159", "1e10", "007", "1,000,000", "masterpiece", "best quality", "MixedCase", "camelCaseWord",
    "ALLCAPS", "Title Case", "it's", "don't", "we'll", "I'M", "they've", "she'd", "you're", "O'Brien", "café",
    "naïve", "Ünïcödé", "ÀÉÎÕÜ", "привет мир", "Москва", "日本語のテキスト", "中文提示词", "한국어", "مرحبا بالعالم",
    "١٢٣", "שלום", "ελληνικά", "ΣΑΣ", "हिन्दी", "ไทย", "😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "🔥🔥🔥", "e\u0301", "A\u030a",
    "\u212b", "\u2126", "ﬁ", "Ａｂｃ", "½", "²", "Ⅻ", "°", "İstanbul", "straße", "\u00a0", "\u3000", "\u200b", "\ufeff",
    "\t", "\n", "  ", "\r\n", " \t\n ", "<|startoftext|>", "<|endoftext|>", "<|endoftext|>x", "<|endoftext", "&amp;",
    "#hashtag", "@user", "http://x.com/a?b=c&d=e", "$100", "50%", "a_b_c", "x^2", "~", "`", "'", '"quoted"', "\x00",
    "\x7f", "embedding:name", "</w>", "cat</w>",
]
SEPARATORS = [" ", ", ", "", "\t", "\n", "  ", ",", " BREAK ", "|"]


def fuzz_corpus():
    rng = random.Random(1234)
    corpus = [*FRAGMENTS, "", " ", "a photo of a cat", "A1111-style (prompt:1.1), [with:everything:0.3] <lora:l:1>"]
    for _ in range(160):
        parts = rng.choices(FRAGMENTS, k=rng.randint(1, 30))
        corpus.append("".join(part + rng.choice(SEPARATORS) for part in parts))
    for _ in range(40):  # random code points from every plane in use, surrogates excluded
        corpus.append("".join(chr(rng.choice([rng.randint(0x20, 0x24F), rng.randint(0x250, 0xD7FF),
                                              rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x2FFFF)]))
                              for _ in range(rng.randint(1, 40))))
    corpus += [", ".join(rng.choices(FRAGMENTS, k=400)), "masterpiece, " * 120]  # very long prompts
    return corpus


CORPUS = fuzz_corpus()
LONG = CORPUS[-1]

# every call form of __call__ the engine (sd_hijack_clip, sd_hijack_open_clip, ldm/modules/encoders/modules.py,
# demo_model/train.py), diffusers-style pipelines and extensions use, and the options around them
CALL_FORMS = [
    dict(),
    dict(truncation=False, add_special_tokens=False),
    dict(max_length=20, truncation=True, add_special_tokens=False),
    dict(max_length=20, return_tensors="pt", add_special_tokens=False),
    dict(truncation=True, max_length=77, return_length=True, return_overflowing_tokens=False, padding="max_length",
         return_tensors="pt"),
    dict(padding="max_length", max_length=77, truncation=True, return_tensors="pt"),
    dict(padding="longest", return_tensors="pt"),
    dict(padding=True, truncation=True),
    dict(padding=True, return_attention_mask=False),
    dict(padding="max_length"),
    dict(truncation=True),
    dict(truncation="longest_first", max_length=10, return_overflowing_tokens=True),
    dict(truncation=True, max_length=12, stride=3, return_overflowing_tokens=True, padding="max_length",
         return_tensors="pt"),
    dict(return_length=True, return_special_tokens_mask=True, return_offsets_mapping=True,
         return_token_type_ids=True),
    dict(padding="max_length", max_length=90, padding_side="left", return_length=True),
    dict(padding=True, pad_to_multiple_of=8, return_tensors="pt"),
    dict(add_special_tokens=False, return_tensors="pt", padding=True),
]


@pytest.fixture(scope="module")
def reference():
    from transformers import CLIPTokenizer
    return CLIPTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)


@pytest.fixture(scope="module")
def light():
    tokenizer = LightCLIPTokenizer(TOKENIZER_DIR)
    yield tokenizer
    assert tokenizer._full is None, "a call the light tokenizer should answer went to transformers' tokenizer"


def assert_same(ours, theirs, what=""):
    """Same value, type and (for tensors) dtype; for a BatchEncoding the same keys in the same order."""
    if hasattr(theirs, "keys"):
        assert list(ours.keys()) == list(theirs.keys()), what
        for key in theirs.keys():
            assert_same(ours[key], theirs[key], f"{what} [{key}]")
    elif isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.dtype == theirs.dtype and torch.equal(ours, theirs), what
    else:
        assert type(ours) is type(theirs) and ours == theirs, what


def test_the_pipeline_is_transformers_pipeline_setting_for_setting(light, reference):
    """Normaliser, pre-tokeniser, BPE model (vocabulary, merges, "</w>", unknown token), special tokens,
    post-processor and decoder serialise to exactly what transformers' CLIPTokenizer holds."""
    assert json.loads(light._backend.to_str()) == json.loads(reference.backend_tokenizer.to_str())


@pytest.mark.parametrize("form", CALL_FORMS, ids=[",".join(f"{k}={v}" for k, v in form.items()) or "plain"
                                                  for form in CALL_FORMS])
def test_every_call_form_gives_transformers_output_for_the_fuzz_corpus(light, reference, form):
    if "padding" in form or form.get("return_tensors") != "pt":  # (unpadded rows make no tensor)
        assert_same(light(CORPUS, **form), reference(CORPUS, **form), f"batch {form}")
    for text in CORPUS:
        assert_same(light(text, **form), reference(text, **form), f"{text!r} {form}")


def test_attribute_access_tokens_and_encodings_read_as_in_transformers(light, reference):
    ours, theirs = light(["a (red:1.2) cat", "dog"], padding=True), reference(["a (red:1.2) cat", "dog"], padding=True)
    assert ours.input_ids == theirs.input_ids and ours.attention_mask == theirs.attention_mask
    assert ours.tokens(0) == theirs.tokens(0) and ours.word_ids(1) == theirs.word_ids(1)
    assert ours[1].ids == theirs[1].ids and ours.n_sequences == theirs.n_sequences == 1
    assert dict(**ours) == dict(**theirs)
    moved = light("a cat", return_tensors="pt").to("cpu")
    assert moved.input_ids.device.type == "cpu" and moved["input_ids"].shape == (1, 4)
    with pytest.raises(AttributeError):
        ours.logits
    assert pickle.loads(pickle.dumps(ours)) == ours


def test_encode_tokenize_and_decode_match_transformers(light, reference):
    for text in CORPUS:
        assert light.encode(text) == reference.encode(text), text
        assert light.tokenize(text) == reference.tokenize(text), text
        ids = reference.encode(text)
        for skip in (False, True):
            assert light.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip), text
    for form in (dict(add_special_tokens=False), dict(truncation=True, max_length=10), dict(return_tensors="pt"),
                 dict(padding="max_length", truncation=True)):
        assert_same(light.encode(LONG, **form), reference.encode(LONG, **form), str(form))
    assert light.encode(CORPUS[:3]) == reference.encode(CORPUS[:3])
    assert light.tokenize("cat", add_special_tokens=True) == reference.tokenize("cat", add_special_tokens=True)


def test_decode_and_batch_decode_take_lists_tensors_and_ints_as_transformers_does(light, reference):
    batch = reference(CORPUS[:50], padding=True, truncation=True, return_tensors="pt")["input_ids"]
    for skip in (False, True):
        assert light.batch_decode(batch, skip_special_tokens=skip) == \
            reference.batch_decode(batch, skip_special_tokens=skip)
        for ids in (batch, batch[3], batch[3].numpy()):
            assert light.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    for ids in (2368, [], [[]], batch[0, 1], [49406, 2368, 49407], (320, 1125)):
        assert light.decode(ids) == reference.decode(ids), ids
    assert light.batch_decode([]) == reference.batch_decode([]) == []
    assert light.batch_decode([320, 2368]) == reference.batch_decode([320, 2368])
    assert light.decode(light("a cat")) == reference.decode(reference("a cat"))
    assert light.decode([320, 2368], clean_up_tokenization_spaces=False) == "a cat"


def test_vocabulary_and_special_tokens_match_transformers(light, reference):
    assert light.get_vocab() == reference.get_vocab() and light.vocab == reference.vocab
    every_id = list(range(len(reference))) + [len(reference) + 5]
    assert light.convert_ids_to_tokens(every_id) == reference.convert_ids_to_tokens(every_id)
    assert light.convert_ids_to_tokens(every_id, skip_special_tokens=True) == \
        reference.convert_ids_to_tokens(every_id, skip_special_tokens=True)
    assert light.convert_ids_to_tokens(2368) == reference.convert_ids_to_tokens(2368) == "cat</w>"
    tokens = ["cat</w>", ",</w>", "<|startoftext|>", "not-a-token", "", "Cat</w>"]
    assert light.convert_tokens_to_ids(tokens) == reference.convert_tokens_to_ids(tokens)
    assert light.convert_tokens_to_ids("not-a-token") == reference.convert_tokens_to_ids("not-a-token") == 49407
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token",
                 "bos_token_id", "eos_token_id", "unk_token_id", "pad_token_id", "sep_token_id", "model_max_length",
                 "vocab_size", "padding_side", "truncation_side", "special_tokens_map", "all_special_tokens",
                 "all_special_ids", "added_tokens_encoder", "max_len_single_sentence", "is_fast", "name_or_path"):
        assert getattr(light, name) == getattr(reference, name), name
    assert len(light) == len(reference) == 49408 and bool(light)
    assert light.num_special_tokens_to_add() == reference.num_special_tokens_to_add() == 2
    assert light.get_added_vocab() == reference.get_added_vocab()
    assert {i: str(t) for i, t in light.added_tokens_decoder.items()} == \
        {i: str(t) for i, t in reference.added_tokens_decoder.items()}


def test_transformers_4_helpers_extensions_call_are_there(light, reference):
    """Cutoff: `_convert_token_to_id`; others: `encoder`; the dataset tag editor: `byte_decoder`."""
    transformers_compat.apply(type(reference))
    for token in ("cat</w>", ",</w>", "not-a-token"):
        assert light._convert_token_to_id(token) == reference._convert_token_to_id(token)
    assert light.encoder == reference.encoder == reference.get_vocab()
    assert light.byte_encoder == reference.byte_encoder and sorted(light.byte_encoder) == list(range(256))
    assert list(light.byte_encoder.values()) == light.convert_ids_to_tokens(list(range(256)))  # CLIP's first tokens
    assert light.byte_decoder == {character: byte for byte, character in light.byte_encoder.items()}
    text = "привет😀日本café"  # no spaces: its BPE tokens spell its UTF-8 bytes through the byte table
    spelled = "".join(token.removesuffix("</w>") for token in light.tokenize(text))
    assert bytes(light.byte_decoder[character] for character in spelled) == text.encode()


def test_bad_options_fail_as_in_transformers(light, reference):
    for form in (dict(padding="sideways"), dict(truncation="middle"), dict(return_tensors="pt"),
                 dict(padding=True, truncation=True, max_length=10, pad_to_multiple_of=3)):
        with pytest.raises(ValueError):
            reference(["a", "a big red cat"], **form)
        with pytest.raises(ValueError):
            light(["a", "a big red cat"], **form)


def test_a_call_from_several_threads_at_once_gets_its_own_options(light, reference):
    forms = [CALL_FORMS[1], CALL_FORMS[4], CALL_FORMS[7], CALL_FORMS[14]]
    texts = CORPUS[100:110]
    expected = [reference(texts, **form) for form in forms]
    failures = []

    def worker(index):
        for _ in range(30):
            try:
                assert_same(light(texts, **forms[index]), expected[index])
            except AssertionError as error:
                failures.append(error)
    threads = [threading.Thread(target=worker, args=(index,)) for index in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_copies_and_pickles_work_without_transformers():
    tokenizer = LightCLIPTokenizer(TOKENIZER_DIR)
    for other in (copy.deepcopy(tokenizer), pickle.loads(pickle.dumps(tokenizer))):
        assert other("a cat")["input_ids"] == [49406, 320, 2368, 49407]
    assert tokenizer._full is None


def test_a_rare_attribute_or_call_form_is_answered_by_transformers_tokenizer_from_then_on(reference):
    tokenizer = LightCLIPTokenizer(TOKENIZER_DIR)
    tokenizer.model_max_length = 30  # settings made before the switch carry over
    tokenizer.extension_flag = "kept"
    assert tokenizer.clean_up_tokenization_spaces is False and tokenizer._full is not None  # not defined here
    assert type(tokenizer._full) is type(reference)
    assert tokenizer.model_max_length == tokenizer._full.model_max_length == 30
    assert tokenizer.extension_flag == "kept"
    assert len(tokenizer(LONG, truncation=True)["input_ids"]) == 30
    # state changed through transformers' tokenizer is what every later call sees
    tokenizer.add_tokens(["mynewtoken"])
    assert tokenizer.tokenize("a mynewtoken") == ["a</w>", "mynewtoken"]
    assert tokenizer("a mynewtoken")["input_ids"][-2] == len(tokenizer) - 1 == 49408
    tokenizer.pad_token = "!"
    assert tokenizer.pad_token_id == 0 and tokenizer("a", padding="max_length", max_length=5)["input_ids"][-1] == 0


@pytest.mark.parametrize("call", [
    lambda t: t("a cat", "a dog"),  # a pair
    lambda t: t("a cat", return_tensors="np"),
    lambda t: t(["a", "cat"], is_split_into_words=True),
    lambda t: t.tokenize("a cat", pair="a dog"),
    lambda t: t.encode("a cat", "a dog"),
    lambda t: t.backend_tokenizer.decode([320, 2368]),
    lambda t: t.save_vocabulary,
], ids=["pair", "numpy", "split-words", "tokenize-pair", "encode-pair", "backend", "save_vocabulary"])
def test_call_forms_not_answered_here_give_transformers_answer(reference, call):
    tokenizer = LightCLIPTokenizer(TOKENIZER_DIR)
    ours, theirs = call(tokenizer), call(reference)
    assert tokenizer._full is not None
    if callable(theirs):
        assert ours.__func__ is theirs.__func__
    elif hasattr(theirs, "keys"):
        assert list(ours.keys()) == list(theirs.keys()) and all(str(ours[k]) == str(theirs[k]) for k in theirs.keys())
    else:
        assert ours == theirs


def test_the_engine_gets_the_light_tokenizer():
    tokenizer = load_clip_tokenizer()
    assert isinstance(tokenizer, LightCLIPTokenizer) and tokenizer is load_clip_tokenizer()
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
