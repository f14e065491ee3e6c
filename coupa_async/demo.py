"""``coupa-async demo``: the tool against its embedded Coupa simulator, no account needed."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from coupa_async.auth import sign_in
from coupa_async.browser import launch_browser, new_context
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator

ATTACHMENT_SELECTOR = (
    "a[href*='attachment'], a[href*='download'], a[download], "
    "[aria-label*='attachment' i], [title*='attachment' i]"
)


async def run_demo(settings: Settings, *, out: Path, pos: int, seed: int) -> int:
    """Start the simulator, sign in, and walk every PO page of its catalog with one context."""
    console = Console(stderr=False)
    async with Simulator(SimConfig(seed=seed, pos=pos)) as sim:
        settings = settings.model_copy(
            update={
                "base_url": sim.base_url,
                "username": sim.username,
                "password": SecretStr(sim.password),
            }
        )
        console.print(f"Simulated Coupa at [bold]{sim.base_url}[/] with {pos} POs")
        async with async_playwright() as playwright:
            browser = await launch_browser(playwright, settings)
            try:
                context = await new_context(browser, settings)
                await sign_in(
                    context,
                    sim.base_url,
                    sim.username,
                    sim.password,
                    timeout_s=settings.timeouts.navigation_s,
                )
                page = await context.new_page()
                table = Table(title="PO pages seen in one browser context")
                for column in ("PO", "HTTP", "links to files", "expected outcome"):
                    table.add_column(column)
                for po in sim.catalog.pos:
                    response = await page.goto(f"{sim.base_url}/order_headers/{po.number}")
                    links = await page.locator(ATTACHMENT_SELECTOR).count()
                    status = str(response.status) if response else "-"
                    table.add_row(f"PO{po.number}", status, str(links), po.expected_outcome)
                console.print(table)
            finally:
                await browser.close()
    console.print(
        f"Walked {pos} PO pages. Downloading into {out} arrives with the PO job and the pool."
    )
    return 0
