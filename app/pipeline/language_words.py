"""The words the turn-taker listens for, per caller language. Pure data and pure functions.

Three kinds of word, for English and for the languages of Indian callers (Hindi, Tamil, Telugu,
Kannada, Bengali, Marathi, Gujarati, Malayalam, Punjabi, Odia), each in its native script and
in the common romanised spelling (what a recogniser writes depends on the model and the caller):

- **backchannels**: said over the agent to show attention, not to take the floor ("uh-huh",
  Hindi "haan", Tamil "aamaa", Telugu "avunu");
- **trailing**: words after which a statement goes on, so the turn is not over (connectives,
  postpositions, fillers: "and", "but", Hindi "aur", "lekin", "ki", Telugu "kaani");
- **answers**: one word that is a whole turn ("yes", "no", Tamil "illai", Kannada "houdu").

A persona's ``language`` (a tag such as ``ta-IN``) selects them (``language_codes``): its own
language merged with English and Hindi, because Indian callers mix them. Backchannels and
answers always include English and Hindi (as the agent always heard "haan" and "achha");
trailing words are English alone for a non-Indian language (Hindi "to", "me", "main" are
common English words that end sentences).

Every list is normalised and merged once per set of languages (``cues`` is cached), so a
caller's words cost one tokenisation (``words``) and set look-ups.

Tokenising: Python's ``\\w`` does not match the combining vowel signs, viramas and nasal marks
of Indic scripts (they are marks, not letters), so "नहीं" would split into "नह" and "ह". Words
here are runs of letters, digits, marks of the Indic blocks and the zero-width (non-)joiners;
the danda "।" ends a sentence and is not part of a word. Text is NFC-normalised, case-folded,
Malayalam chillus written with a zero-width joiner are mapped to the atomic letters, and the
joiners are then dropped, so either spelling of a word matches.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["LANGUAGES", "WORD_LISTS", "Cues", "cues", "cues_for", "language_codes", "words"]


@dataclass(frozen=True, slots=True)
class Cues:
    backchannels: frozenset[str]
    trailing: frozenset[str]
    answers: frozenset[str]


# Each language: (backchannels, trailing, answers), words separated by white space. Romanised
# words that are also ordinary English sentence endings are left out ("ate", "amar", "mate").
WORD_LISTS: dict[str, tuple[str, str, str]] = {
    "en": (  # with the words Indian English adds ("ya", "yaa")
        "uh-huh uh huh mm-hmm mhm mm hmm okay ok yeah yes yep right sure ya yaa yah alright",
        "a an the and or but because cause if than which whose while to for of with without at in"
        " on into from by about as my your our their his her its is are was were i i'm we we're"
        " it's there's just um uh er erm uhm hmm let let's some any per plus umm",
        "yes no yeah yep nope okay ok sure thanks right correct exactly perfect great fine bye"
        " goodbye ya yaa alright done",
    ),
    "hi": (
        "haan haa ha achha acha accha theek thik hai ji hanji haanji sahi bilkul"
        " हाँ हां हा अच्छा ठीक है जी हाँजी हांजी सही बिल्कुल हम्म",
        "aur ki ke ka ko toh to se mein me par pe lekin ya jo kyunki kyonki matlab phir fir jaise"
        " agar mera meri mere aapka aapki aapke hum main kuch umm hmm magar taaki woh wo vo"
        " और कि के का की को तो से में पर पे लेकिन या जो क्योंकि मतलब फिर जैसे अगर मेरा मेरी मेरे"
        " आपका आपकी आपके हम मैं कुछ मगर ताकि वो वह",
        "haan nahi nahin ji theek thik achha accha shukriya dhanyavaad hanji haanji bilkul sahi"
        " हाँ हां नहीं नही जी ठीक अच्छा शुक्रिया धन्यवाद बिल्कुल सही हाँजी हांजी",
    ),
    "ta": (
        "aamaa aama ama aamaam aamam aam sari seri saringa aamanga ஆமா ஆமாம் ஆம் சரி சரிங்க ஆமாங்க ம்ம் ம் ஓகே",
        "aana aanaa aanal aanaal matrum mattrum appuram apram athanaala adhanaala illana illanna"
        " appo vandhu vanthu adhu athu"
        " ஆனா ஆனால் மற்றும் அப்புறம் அதனால அதனால் ஏன்னா இல்லன்னா அப்போ வந்து அது",
        "aamaa aama aamaam illa illai sari seri nandri vendaam vendam venaam podhum podum"
        " ஆமா ஆமாம் ஆம் இல்லை இல்ல சரி நன்றி வேண்டாம் வேணாம் போதும்",
    ),
    "te": (
        "avunu avnu avunandi sare sarenandi alaage alage అవును అవునండి సరే సరేనండి అలాగే ఊ హా ఓకే",
        "mariyu kaani kani ante endukante kabatti kaabatti ayithe aithe ayite leka lekapothe"
        " tarvata taruvatha tharvatha ani mari inka"
        " మరియు కానీ కాని అంటే ఎందుకంటే కాబట్టి అయితే లేక లేకపోతే తర్వాత తరువాత అని మరి ఇంకా",
        "avunu avnu kaadu kadu ledu sare alaage dhanyavaadalu dhanyavadalu vaddu chaalu chalu"
        " అవును కాదు లేదు సరే అలాగే ధన్యవాదాలు వద్దు చాలు",
    ),
    "kn": (
        "houdu haudu hoodu sari aytu aitu hoon hu ಹೌದು ಸರಿ ಆಯ್ತು ಹೂಂ ಹೂ ಓಕೆ ಹಾ",
        "mattu aadre aadare adre yaakandre yakandre athava aamele amele adakke illandre anta nanna"
        " ಮತ್ತು ಆದರೆ ಆದ್ರೆ ಯಾಕಂದ್ರೆ ಯಾಕೆಂದರೆ ಅಂದ್ರೆ ಅಂದರೆ ಅಥವಾ ಆಮೇಲೆ ಅದಕ್ಕೆ ಇಲ್ಲಾಂದ್ರೆ ಅಂತ ನನ್ನ",
        "houdu haudu illa alla sari aytu dhanyavaada dhanyavadagalu beda saaku saku"
        " ಹೌದು ಇಲ್ಲ ಅಲ್ಲ ಸರಿ ಆಯ್ತು ಧನ್ಯವಾದ ಧನ್ಯವಾದಗಳು ಬೇಡ ಸಾಕು",
    ),
    "bn": (
        "hyan hya accha achha thik ache achhe হ্যাঁ হাঁ হ্যা আচ্ছা ঠিক আছে হুম জি ওকে",
        "aar ebong kintu je karon tai ba othoba tarpor mane jodi kenona"
        " আর এবং কিন্তু যে কারণ তাই বা অথবা তারপর মানে যদি কেননা আমার",
        "hyan hya na naa accha thik dhonnobad dhanyabad হ্যাঁ হাঁ না আচ্ছা ঠিক ধন্যবাদ",
    ),
    "mr": (
        "ho hoy bara barobar thik aahe ahe हो होय हां बरं बरोबर ठीक आहे अच्छा",
        "ani aani pan ki kinva kimva mhanun karan tar mhanje nantar maza majha mazi majhi maze"
        " majhe mag आणि पण की किंवा म्हणून कारण जर तर म्हणजे नंतर माझा माझी माझे मग",
        "ho hoy nahi naahi barobar bara dhanyavaad nako हो होय नाही बरोबर बरं धन्यवाद नको ठीक",
    ),
    "gu": (
        "barabar saru saaru bhale thik che chhe હા હાં બરાબર સારું ભલે ઠીક છે ઓકે",
        "ane pan ke athva athava kemke karan etle jo pachhi pachi maro maru"
        " અને પણ કે અથવા કેમકે કારણ એટલે જો પછી માટે મારો મારી મારું તો",
        "na naa barabar saru saaru bhale aabhar abhar nathi હા ના બરાબર સારું ભલે આભાર નથી ધન્યવાદ",
    ),
    "ml": (
        "athe aathe shari sheri അതെ ശരി ഉം ആ ഓക്കെ ഓക്കേ ഹാ",
        "pinne pakshe athava ennal ennaal enkil engil athukondu ennittu ennu ente karanam allenkil"
        " allengil പിന്നെ പക്ഷേ പക്ഷെ അഥവാ എന്നാൽ എങ്കിൽ അതുകൊണ്ട് എന്നിട്ട് എന്ന് എന്റെ കാരണം"
        " അല്ലെങ്കിൽ",
        "athe alla illa shari sheri nanni venda mathi undu അതെ അല്ല ഇല്ല ശരി നന്ദി വേണ്ട മതി ഉണ്ട്",
    ),
    "pa": (
        "changa ਹਾਂ ਹਾਂਜੀ ਜੀ ਠੀਕ ਹੈ ਅੱਛਾ ਸਹੀ ਬਿਲਕੁਲ ਚੰਗਾ ਓਕੇ",
        "te jaan kiunki je da di de nu vich naal ਅਤੇ ਤੇ ਪਰ ਕਿ ਜਾਂ ਕਿਉਂਕਿ ਫਿਰ ਜੇ ਮੇਰਾ ਮੇਰੀ ਮੇਰੇ ਦਾ ਦੀ ਦੇ ਨੂੰ ਤੋਂ ਵਿੱਚ ਨਾਲ",
        "changa dhanvaad dhannvaad ਹਾਂ ਨਹੀਂ ਜੀ ਠੀਕ ਸ਼ੁਕਰੀਆ ਧੰਨਵਾਦ ਹਾਂਜੀ ਚੰਗਾ",
    ),
    "od": (
        "han hau achhi ହଁ ହଉ ଠିକ ଅଛି ଆଚ୍ଛା",
        "au ebang kintu je kimba karana tenu jadi tapare mora mane ଆଉ ଏବଂ କିନ୍ତୁ ଯେ କିମ୍ବା କାରଣ ତେଣୁ ଯଦି ତାପରେ ମୋର ମାନେ",
        "han na nahi hau thik dhanyabad ହଁ ନା ନାହିଁ ହଉ ଠିକ ଧନ୍ୟବାଦ",
    ),
}
# language tags to the codes above: Odia is "or" in ISO 639-1 and "od" in some vendors' tags
_ALIASES = {"or": "od", "ori": "od", "ory": "od"}
_INDIAN = frozenset(("hi", "ta", "te", "kn", "bn", "mr", "gu", "ml", "pa", "od"))
LANGUAGES = frozenset(WORD_LISTS)

# Letters, digits, underscore (``\w``), Latin combining marks, the Indic blocks from Devanagari
# to Malayalam without the dandas (U+0964-5), Vedic extensions, and the zero-width joiners.
_WORD = re.compile(r"[\w\u0300-\u036f\u0900-\u0963\u0966-\u0d7f\u1cd0-\u1cff\ua8e0-\ua8ff\u200c\u200d'’-]+")
_JOINED_CHILLU = re.compile("([\u0d23\u0d28\u0d30\u0d32\u0d33\u0d15])\u0d4d\u200d")
_CHILLU = dict(
    zip("\u0d23\u0d28\u0d30\u0d32\u0d33\u0d15", "\u0d7a\u0d7b\u0d7c\u0d7d\u0d7e\u0d7f", strict=True)
)
_JOINERS = str.maketrans("", "", "\u200c\u200d")


def _clean(text: str) -> str:
    if not text.isascii():
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        if "\u200d" in text or "\u200c" in text:
            text = _JOINED_CHILLU.sub(lambda m: _CHILLU[m.group(1)], text).translate(_JOINERS)
        text = text.replace("’", "'")
    return text.casefold()


def words(text: str) -> list[str]:
    """The words of ``text``, normalised (NFC, case-folded, joiners dropped), without the
    punctuation around them ("Uh-huh." → ["uh-huh"], "हाँ।" → ["हाँ"])."""
    found = (w.strip("'-") for w in _WORD.findall(_clean(text)))
    return [w for w in found if w]


def language_codes(tag: str) -> frozenset[str]:
    """The word lists for a language tag: "en-US" → {"en"}; "hi-IN", "en-IN", "multi" (Deepgram's
    code-switching model) → {"en", "hi"}; "ta-IN" → {"en", "hi", "ta"}; an unknown language →
    {"en"}."""
    primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
    primary = _ALIASES.get(primary, primary)
    if primary in _INDIAN:
        return frozenset(("en", "hi", primary))
    if primary == "multi" or tag.strip().lower().replace("_", "-") == "en-in":
        return frozenset(("en", "hi"))
    return frozenset(("en",))


def _own(code: str) -> Cues:
    back, trailing, answers = WORD_LISTS[code]
    return Cues(frozenset(words(back)), frozenset(words(trailing)), frozenset(words(answers)))


_OWN = {code: _own(code) for code in WORD_LISTS}


@lru_cache(maxsize=64)
def cues(codes: frozenset[str]) -> Cues:
    """The merged lists of ``codes`` (unknown codes ignored); backchannels and answers always
    include English and Hindi. Cached: one merge per set of languages in the process."""
    known = [_OWN[c] for c in sorted(codes) if c in _OWN]
    always = [_OWN["en"], _OWN["hi"]]
    return Cues(
        backchannels=frozenset().union(*(c.backchannels for c in (*always, *known))),
        trailing=frozenset().union(*(c.trailing for c in known)),
        answers=frozenset().union(*(c.answers for c in (*always, *known))),
    )


def cues_for(tag: str) -> Cues:
    """The merged lists for a persona's language tag (``language_codes`` then ``cues``)."""
    return cues(language_codes(tag))
