/**
 * Compiling a stored template: once for every process. The compile is kept in `template_compiles`
 * under its key (design, brand styling and options hashed), so a send worker reads what the API (or
 * another worker) compiled, and a worker process that only sends never loads MJML.
 */
import { validateDesign } from '../../render/components.ts';
import {
  type BrandRow,
  brandRenderContext,
  type CompiledEmail,
  compileDesign,
  compileKey,
  type RenderOptions,
} from '../../render/render.ts';
import type { Db } from '../../store/db.ts';
import { findTemplateCompile, storeTemplateCompile, type TemplateRow } from '../../store/templates.ts';
import type { Deps } from '../deps.ts';

/**
 * The compiled email of a template with a design, for this brand and these options: from this
 * process's memory, else from the database, else compiled here and stored for the other processes.
 */
export function compileTemplate(
  deps: Pick<Deps, 'clock'> & { db: Db },
  template: Pick<TemplateRow, 'id' | 'design'>,
  brand: BrandRow,
  options: RenderOptions,
): Promise<CompiledEmail> {
  return compileDesign(validateDesign(template.design), brandRenderContext(brand), options, {
    async load(key) {
      return findTemplateCompile(deps.db, template.id, key);
    },
    async save(key, compiled) {
      await storeTemplateCompile(deps.db, template.id, key, compiled, deps.clock.now());
    },
  });
}

/**
 * Makes sure the compile is stored for the other processes (campaign send and schedule call this, so
 * their workers find it), compiling it if no process has yet.
 */
export async function storeTemplateCompileFor(
  deps: Pick<Deps, 'clock'> & { db: Db },
  template: Pick<TemplateRow, 'id' | 'design'>,
  brand: BrandRow,
  options: RenderOptions,
): Promise<void> {
  const design = validateDesign(template.design);
  const context = brandRenderContext(brand);
  const key = compileKey(design, context, options);
  if (await findTemplateCompile(deps.db, template.id, key)) return;
  const compiled = await compileDesign(design, context, options);
  await storeTemplateCompile(deps.db, template.id, key, compiled, deps.clock.now());
}
