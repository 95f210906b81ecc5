/**
 * Labels of the dashboard in Bahasa Indonesia (default) and English, from ../i18n/<language>.json.
 *
 * The chosen language is kept in localStorage, so it survives a reload. The <html lang>
 * attribute follows it, for screen readers and hyphenation.
 */

export const LANGUAGES = ["id", "en"];
export const DEFAULT_LANGUAGE = "id";

const STORAGE_KEY = "smartoffice.language";

/** Intl locale of each language. Indonesian formats 1.699,53, and English in UK order formats 13 March 2019. */
const LOCALES = { id: "id-ID", en: "en-GB" };

let language = DEFAULT_LANGUAGE;
let messages = {};

/** Return the language saved by the user, or the default when none was saved or storage is blocked. */
export function preferredLanguage() {
  try {
    const saved = window.localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.includes(saved) ? saved : DEFAULT_LANGUAGE;
  } catch {
    return DEFAULT_LANGUAGE;
  }
}

/** Load the labels of `code`, make it the current language and remember it. */
export async function useLanguage(code) {
  const chosen = LANGUAGES.includes(code) ? code : DEFAULT_LANGUAGE;
  const url = new URL(`../i18n/${chosen}.json`, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`labels ${url} failed to load: HTTP ${response.status}`);
  }
  messages = await response.json();
  language = chosen;
  document.documentElement.lang = chosen;
  try {
    window.localStorage.setItem(STORAGE_KEY, chosen);
  } catch {
    // Private browsing may block storage; the language then lasts until the page is reloaded.
  }
}

export function currentLanguage() {
  return language;
}

export function currentLocale() {
  return LOCALES[language];
}

/** Return the label `key` with `{name}` placeholders filled from `values`; an unknown key returns itself. */
export function t(key, values = {}) {
  const template = messages[key];
  if (template === undefined) {
    return key;
  }
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
}

/** Return the label `key`, or `fallback` when the labels have no such key (e.g. an alert kind added later). */
export function tOr(key, fallback, values = {}) {
  return key in messages ? t(key, values) : fallback;
}

/** Fill the static parts of the page: text of [data-i18n], aria-label of [data-i18n-label]. */
export function translateStatic(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
}
