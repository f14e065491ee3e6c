"""Every selector and text by which coupa_async recognises Coupa pages, in one place.

The defaults come from real Coupa tenants. Each list can be replaced in settings, for example in
``playwright.config`` under ``[markers]`` or with ``COUPA_MARKERS__ERROR_TEXTS='["…"]'``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CoupaMarkers(BaseModel):
    """Selectors and texts that identify the parts of Coupa pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supplier_selectors: list[str] = Field(
        default_factory=lambda: [
            "span[data-supplier-name]",
            "[class*='supplier-name']",
            ".supplier-info span",
            "[data-testid*='supplier'] span",
        ]
    )
    attachment_link_selectors: list[str] = Field(
        default_factory=lambda: [
            "a[href*='attachment' i]",
            "a[href*='download' i]",
            "a[download]",
            "a[href][aria-label*='attachment' i]",
            "a[href][title*='attachment' i]",
        ]
    )
    # Elements without an href that start a download when clicked: labelled as attachments,
    # or (as real tenants show them) spans whose only sign is a title that is the file name.
    attachment_click_selectors: list[str] = Field(
        default_factory=lambda: [
            "[aria-label*='attachment' i]:not(a[href])",
            "[title*='attachment' i]:not(a[href])",
            "span[title*='.pdf' i]",
            "span[title*='.docx' i]",
            "span[title*='.doc' i]",
            "span[title*='.msg' i]",
            "span[title*='.eml' i]",
            "span[title*='.xlsx' i]",
            "span[title*='.xls' i]",
            "span[title*='.csv' i]",
            "span[title*='.txt' i]",
            "span[title*='.zip' i]",
            "span[title*='.png' i]",
            "span[title*='.jpg' i]",
            "span[title*='.tif' i]",
        ]
    )
    # Attachments that are a link to an outside address (no bytes): never fetched. Links to a
    # host other than the tenant's (and its file hosts) are URL attachments too.
    url_attachment_selectors: list[str] = Field(
        default_factory=lambda: [
            "[data-attachment-type='url' i]",
            "[class~='attachment-url']",
            "[class~='attachment_url']",
            "[data-testid*='url-attachment' i]",
        ]
    )
    # Attachments shown as text (no bytes): recorded with their text.
    text_attachment_selectors: list[str] = Field(
        default_factory=lambda: [
            "[data-attachment-type='text' i]",
            "[class~='attachment-text']",
            "[class~='attachment_text']",
            "[data-testid*='text-attachment' i]",
        ]
    )
    # Where attachments appear (header, lines, comments): watched for changes while a page
    # settles (else #main, body).
    attachment_area_selectors: list[str] = Field(
        default_factory=lambda: [
            "#attachments",
            "[id*='attachments' i]",
            "[class*='attachments-section' i]",
            "[data-testid*='attachments' i]",
            "#comments",
            "[id*='comments' i]",
            "[class*='comments' i]",
            "table.lines",
            "[class*='order-lines' i]",
            "[class*='line-items' i]",
            "[id*='lines' i]",
        ]
    )
    # An attachment inside one of these is a line's (its number: an attribute, else the first
    # cell's text, else its position), or a comment's (author and date from inside it).
    line_selectors: list[str] = Field(
        default_factory=lambda: [
            "[data-line-num]",
            "[data-line-number]",
            "[class~='order-line']",
            "[class~='order_line']",
            "[class~='requisition-line']",
            "[class~='requisition_line']",
            "[class~='line-item']",
        ]
    )
    line_number_attributes: list[str] = Field(
        default_factory=lambda: ["data-line-num", "data-line-number", "data-line"]
    )
    comment_selectors: list[str] = Field(
        default_factory=lambda: [
            "[data-comment-id]",
            "[class~='comment']",
            "[class~='comment-item']",
            "[id^='comment_']",
        ]
    )
    comment_author_selectors: list[str] = Field(
        default_factory=lambda: [
            "[class*='comment-author' i]",
            "[class*='commenter' i]",
            "[class*='author' i]",
            "[class*='user-name' i]",
        ]
    )
    comment_date_selectors: list[str] = Field(
        default_factory=lambda: ["time", "[class*='comment-date' i]", "[class*='timestamp' i]"]
    )
    # The number a PO or requisition page says it is, in its headings or title (group 1).
    po_identity_patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bPurchase\s+Order\s*(?:#|No\.?|Number:?)\s*(?:P[OM])?\s*(\d+)",
            r"\bP[OM]\s*(?:#|No\.?|Number:?)\s*(\d+)",
            r"\bPedido\s+de\s+compra\s*(?:#|N[º°o]\.?)\s*(\d+)",
        ]
    )
    requisition_identity_patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bRequisition\s*(?:#|No\.?|Number:?)\s*(\d+)",
            r"\bRequisi[çc][ãa]o\s*(?:#|N[º°o]\.?)\s*(\d+)",
        ]
    )
    identity_selectors: list[str] = Field(
        default_factory=lambda: ["h1", "h2", "[class*='page-title' i]", "title"]
    )
    # The PO list's search box, and where its results link to POs.
    po_search_input_selectors: list[str] = Field(
        default_factory=lambda: [
            "form[role='search'] input[type='search']",
            "input[type='search']",
            "input[name*='search' i]",
            "input[placeholder*='search' i]",
            "input[aria-label*='search' i]",
        ]
    )
    po_search_result_selector: str = "a[href*='/order_headers/']"
    # Requests that never feed an attachment list (polls, live channels, analytics): they
    # neither hold a page from settling nor, when they fail, make its list unproven.
    background_request_markers: list[str] = Field(
        default_factory=lambda: [
            "poll",
            "realtime",
            "subscribe",
            "/cable",
            "heartbeat",
            "keepalive",
            "presence",
            "analytics",
            "telemetry",
            "beacon",
            "/collect",
        ]
    )
    requisition_link_selector: str = "a[href*='/requisition_headers/']"
    requisition_link_texts: list[str] = Field(
        default_factory=lambda: ["Requisition", "Purchase Requisition", "Requisição"]
    )
    error_texts: list[str] = Field(
        default_factory=lambda: [
            "Oops! We couldn't find what you wanted",
            "You are not authorized",
            "Access denied",
            "The page you were looking for doesn't exist",
            "Desculpe, não encontramos o que você procurava",
        ]
    )
    error_selectors: list[str] = Field(
        default_factory=lambda: ["div.flash_error", "div.flash-error", "div#error_explanation"]
    )
    error_heading_words: list[str] = Field(default_factory=lambda: ["Oops", "Sorry"])
    not_authorised_words: list[str] = Field(
        default_factory=lambda: ["not authorized", "not authorised", "access denied", "forbidden"]
    )
    login_path_markers: list[str] = Field(
        default_factory=lambda: ["/sessions/new", "/sessions", "login", "saml", "/sso/"]
    )
    identity_provider_hosts: list[str] = Field(
        default_factory=lambda: ["okta", "login.microsoftonline.com", "adfs"]
    )
    # A sign-in page answering with one of these refused the username or password.
    sign_in_error_texts: list[str] = Field(
        default_factory=lambda: [
            "Invalid login or password",
            "Invalid email or password",
            "Invalid username or password",
            "Incorrect user ID or password",  # ADFS
            "Your account or password is incorrect",  # Microsoft Entra ID
            "Unable to sign in",  # Okta
            "E-mail ou senha inválidos",
            "Login ou senha inválidos",
            "Usuário ou senha inválidos",
            "Usuário ou senha incorretos",
        ]
    )
    # Where a sign-in page shows its answer (read after a submit when no text above matched).
    sign_in_error_selectors: list[str] = Field(
        default_factory=lambda: [
            "div.flash_error",
            "div.flash-error",
            "div#error_explanation",
            "[role='alert']",
            ".alert-danger",
            ".error",
        ]
    )
    account_locked_texts: list[str] = Field(
        default_factory=lambda: [
            "account is locked",
            "account has been locked",
            "account locked",
            "locked out",
            "conta está bloqueada",
            "conta bloqueada",
        ]
    )
    # A second factor that a headless run cannot answer: texts (read after a submit) and inputs.
    second_factor_texts: list[str] = Field(
        default_factory=lambda: [
            "verification code",
            "one-time",
            "one time password",
            "two-factor",
            "two-step",
            "2-step verification",
            "multi-factor",
            "authenticator app",
            "código de verificação",
        ]
    )
    second_factor_selectors: list[str] = Field(
        default_factory=lambda: [
            "input[name*='otp' i]",
            "input[autocomplete='one-time-code']",
            "input[name='code' i]",
            "input[name*='passcode' i]",
            "input[name*='verification' i]",
        ]
    )
    # Signs in the static HTML that a list is still to be filled in by script.
    script_fill_selectors: list[str] = Field(
        default_factory=lambda: ["[data-loading]", "[aria-busy='true']", ".attachments-loading"]
    )
    script_fill_texts: list[str] = Field(
        default_factory=lambda: ["Loading attachments", "Carregando anexos"]
    )
